"""SavedModel export: the serving signatures every ``run_fn`` writes.

``serving_default`` takes serialized ``tf.Example`` protos in the raw
(pre-Transform) format: that is what TF Serving's Predict API, TFMA's
Evaluator and the BulkInferrer feed. It parses them with the raw feature spec
(label removed), applies the Transform graph (``tft.TFTransformOutput``'s
``transform_features_layer``) and runs the model, so the SavedModel needs
nothing else to serve.
"""

from typing import Callable, Dict, Optional


def raw_serving_feature_spec(tf_transform_output, label_key: str) -> Dict:
    """The raw feature spec without the label (what a serving request holds)."""
    spec = dict(tf_transform_output.raw_feature_spec())
    spec.pop(label_key, None)
    return spec


def make_serve_tf_examples_fn(
    model, tf_transform_output, label_key: str, outputs: Callable,
    call: Optional[Callable] = None,
):
    """The ``serving_default`` function: serialized tf.Examples -> outputs.

    Args:
      model: the trained Keras model (takes transformed features).
      tf_transform_output: the ``tft.TFTransformOutput`` used in training.
      label_key: raw label feature, not expected in requests.
      outputs: maps the model's output tensor to the signature's output dict.
      call: runs the model on the transformed features (without the label)
        and returns its output; default ``model(transformed)`` (an image
        classifier applies its eval preprocessing first).

    Returns:
      A ``tf.function`` taking a string tensor ``[N]`` named ``examples``.
    """
    import tensorflow as tf

    model.tft_layer = tf_transform_output.transform_features_layer()
    feature_spec = raw_serving_feature_spec(tf_transform_output, label_key)

    @tf.function(
        input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")]
    )
    def serve_tf_examples_fn(serialized_tf_examples):
        parsed = tf.io.parse_example(serialized_tf_examples, feature_spec)
        transformed = model.tft_layer(parsed)
        transformed.pop(label_key, None)
        return outputs(call(transformed) if call else model(transformed))

    return serve_tf_examples_fn


def save(model, serving_model_dir: str, signatures: Dict) -> None:
    """Writes ``model`` as a SavedModel with ``signatures`` to ``serving_model_dir``.

    TFX's Trainer already writes into a temporary execution directory that
    is published only when the component succeeds.
    """
    model.save(serving_model_dir, save_format="tf", signatures=signatures)
