"""Progress within an epoch, shown only on a terminal.

Per-epoch lines go through each loop's `log` (print: line-buffered by the binaries, so a
pipe or a file gets each line as it happens). On a terminal, long epochs also show a
`\\r` line that is rewritten every few batches and cleared at the end of the epoch; in a
pipe or a file that line would only be noise, so it is not written there.
"""

import sys

UPDATES_PER_EPOCH = 50


def on_terminal() -> bool:
    return sys.stdout.isatty()


def keras_verbosity() -> int:
    """`verbose` for keras' fit: the progress bar on a terminal, one line per epoch otherwise."""
    return 1 if on_terminal() else 2


class StepProgress:
    """`StepProgress(label, steps)`; `.update(step, loss)` after each step; `.clear()` at the epoch's end."""

    def __init__(self, label, steps):
        self.label, self.steps = label, steps
        self.every = max(1, steps // UPDATES_PER_EPOCH)
        self.shown = on_terminal() and steps > 1

    def update(self, step, loss):
        if self.shown and (step % self.every == 0 or step == self.steps):
            sys.stdout.write(f"\r{self.label}: step {step}/{self.steps} loss {loss:.4f}")
            sys.stdout.flush()

    def clear(self):
        if self.shown:
            sys.stdout.write("\r\033[K")
            sys.stdout.flush()
