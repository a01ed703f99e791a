"""From a chosen child to a measured int8 .tflite: strip, fold, QAT fine-tune, convert, export,
and the runtimes (LiteRT, TFLite Micro) that measure the file itself."""
