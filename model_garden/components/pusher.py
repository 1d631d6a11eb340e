"""The Pusher's executor: TFX's, except that the model already served is not pushed again.

A re-run on unchanged data serves ExampleGen ... Trainer from the cache, so
the Trainer's model is the one the last run pushed. The baseline step has
just copied that pushed version (:mod:`model_garden.components.latest_blessed_model`),
the Evaluator compares the model with itself and blesses it ("not worse"),
and TFX's Pusher would push the same SavedModel once more under a new version
number: TF Serving reloads it, and the push destination fills with copies.

:class:`Executor` compares the blessed model with the newest pushed version
first. When they are the same SavedModel (the same ``fingerprint.pb``: TF's
SavedModel fingerprint, which hashes the graph, the signatures and the
checkpoint, ``tensorflow/python/saved_model/fingerprinting.py``; or, for a
SavedModel without one, the same ``saved_model.pb`` and
``variables/variables.index``), it marks the output not pushed, as TFX does
for an unblessed model (``pushed = 0``), and records why in the custom
property ``not_pushed_reason`` and the version in ``same_as_version``.

A push to a local folder is atomic: TFX's Pusher copies the SavedModel
file by file into ``<destination>/<version>`` (``saved_model.pb`` last),
so a Pusher killed mid-copy leaves a half-written version where TF Serving
looks for models. Here TFX copies into ``<destination>/.push-<execution
id>/<version>`` (not a version folder: TF Serving only loads numeric
folders) and the finished copy is renamed into place, one ``rename(2)`` on
the same file system. A staging folder a killed Pusher left is removed by
the next run (:mod:`model_garden.pipelines.recovery`). Remote destinations
(``gs://``) keep TFX's copy, where ``saved_model.pb`` last marks a complete
version.
"""

import logging
import os
import posixpath
from typing import Optional

from tfx.components.pusher import executor as tfx_pusher
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from model_garden.components import latest_blessed_model

#: Files that identify a SavedModel, in order of preference: the fingerprint
#: (TF >= 2.12 writes it), else the graph and the checkpoint index.
IDENTITY_FILES = (("fingerprint.pb",), ("saved_model.pb", "variables/variables.index"))


def _read(path: str) -> Optional[bytes]:
    if not fileio.exists(path):
        return None
    with fileio.open(path, "rb") as f:
        return f.read()


def same_saved_model(a: str, b: str) -> bool:
    """Whether the SavedModel folders ``a`` and ``b`` hold the same model.

    Compares the first of :data:`IDENTITY_FILES` that both folders have, byte
    for byte; two folders without any of them are not the same.
    """
    for names in IDENTITY_FILES:
        left = [_read(posixpath.join(a, n)) for n in names]
        right = [_read(posixpath.join(b, n)) for n in names]
        if all(x is not None for x in left + right):
            return left == right
    return False


def _filesystem_destination(exec_properties) -> Optional[str]:
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
                              destination)
    if destination.WhichOneof("destination") != "filesystem":
        return None
    return destination.filesystem.base_directory


def staging_folder(destination: str, execution_id: str) -> str:
    """Where a push to the local ``destination`` is copied before its rename into place."""
    return os.path.join(destination, f".push-{execution_id}")


class Executor(tfx_pusher.Executor):
    """TFX's Pusher, which does not push again the model the destination already serves,
    and pushes to a local folder atomically (see the module docstring)."""

    _staged = None  # (staging folder, destination) while a local push is staged

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        base = _filesystem_destination(exec_properties)
        if base and self.CheckBlessing(input_dict):
            version = latest_blessed_model.latest_pushed_version(base)
            if version and same_saved_model(self.GetModelPath(input_dict),
                                            posixpath.join(base, version)):
                model_push = artifact_utils.get_single_instance(
                    output_dict[standard_component_specs.PUSHED_MODEL_KEY])
                self._MarkNotPushed(model_push)
                model_push.set_string_custom_property(
                    "not_pushed_reason", "the same model is already served")
                model_push.set_string_custom_property("same_as_version", version)
                logging.info("%s/%s already serves this model: not pushed again", base, version)
                return
        if not base or "://" in base:
            super().Do(input_dict, output_dict, exec_properties)
            return
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        staging = staging_folder(base, posixpath.basename(model_push.uri.rstrip("/")))
        if fileio.exists(staging):
            fileio.rmtree(staging)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
                                  destination)
        destination.filesystem.base_directory = staging
        self._staged = (staging, base)
        try:
            super().Do(input_dict, output_dict, {
                **exec_properties,
                standard_component_specs.PUSH_DESTINATION_KEY:
                    proto_utils.proto_to_json(destination)})
        finally:
            self._staged = None
            if fileio.exists(staging):
                fileio.rmtree(staging)

    def _MarkPushed(self, model_push, pushed_destination: str,
                    pushed_version: Optional[str] = None) -> None:
        """Moves a staged push into place (one rename), then records it as TFX does.

        Raises:
          FileExistsError: the version folder appeared meanwhile (a push by
            hand, or another run without the run lock); the staged copy is
            removed and nothing is overwritten.
        """
        if self._staged:
            staging, base = self._staged
            final = os.path.join(base, os.path.relpath(pushed_destination, staging))
            if os.path.exists(final):
                raise FileExistsError(f"{final}: this version was pushed meanwhile; "
                                      "not overwritten")
            os.rename(pushed_destination, final)
            logging.info("Model moved into place at %s.", final)
            pushed_destination = final
        super()._MarkPushed(model_push, pushed_destination, pushed_version)
