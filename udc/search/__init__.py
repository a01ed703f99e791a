"""Search under a budget on a trained supernet: the config it runs (`settings`), the training and
search loop (`loop`), selection under limits (`selection`), resumable state (`state`) and the
warm start from a float backbone (`warm_start`)."""
