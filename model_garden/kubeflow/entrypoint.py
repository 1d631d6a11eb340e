"""Container entrypoint for TFX components on Kubeflow Pipelines v2.

The compiler (``adapt_for_open_source_backend``) runs every component as
``python -m model_garden.kubeflow.entrypoint`` with TFX's own arguments.  For
now this forwards to TFX's ``kubeflow_v2_run_executor``; fixes for the
open-source KFP v2 driver/launcher follow.
"""

from absl import app
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor


def main() -> None:
  """Runs TFX's ``kubeflow_v2_run_executor`` main with ``sys.argv``."""
  app.run(kubeflow_v2_run_executor.main,
          flags_parser=kubeflow_v2_run_executor._parse_flags)  # pylint: disable=protected-access


if __name__ == '__main__':
  main()
