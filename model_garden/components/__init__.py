"""TFX components: the ExampleGens and the custom executors.

The ExampleGens (MNIST, census, CIFAR-10) and the Evaluator, Pusher,
LatestBlessedModel, InputSpans and AnomaliesGate executors. The raw datasets they read
(registry, downloads, format readers) are in :mod:`model_garden.datasets`.
"""
