"""Models: the .tflite reader, runtime, Edge TPU, a loaded model, labels, the store, MACs and architecture specs."""
