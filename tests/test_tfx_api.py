"""model_garden.pipelines.tfx_api: every name is the very ``tfx.v1`` object, and
importing it (what a local run does) does not import google.cloud.aiplatform."""

import functools
import os
import subprocess
import sys

from model_garden.pipelines import tfx_api


def test_every_name_is_the_public_tfx_v1_object():
    from tfx import v1

    for name, dotted in tfx_api.V1_NAMES.items():
        public = functools.reduce(getattr, dotted.split("."), v1)
        assert getattr(tfx_api, name) is public, name


def test_a_local_pipeline_imports_no_aiplatform():
    code = ("import sys; from model_garden.pipelines import factory, runners, tfx_api; "
            "from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner; "
            "print(sorted(m for m in sys.modules if m.startswith(('google.cloud.aiplatform', "
            "'tfx.v1'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.getcwd()), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]"
