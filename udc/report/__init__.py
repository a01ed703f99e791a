"""What a person reads: the report of an exported model, the Pareto front and its chart, a
.tflite's weights under the codec, and the machine a figure was measured on."""
