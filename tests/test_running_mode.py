"""``--direct-running-mode auto``: in-process Beam for small inputs, worker processes
for large ones (model_garden.pipelines.runners.running_mode), on real folders."""

import os

import pytest

from model_garden.pipelines import runners


def test_the_shared_mnist_files_run_in_memory(mnist_dir):
    size = runners.input_bytes(mnist_dir)
    assert 0 < size < runners.AUTO_IN_MEMORY_BYTES
    assert size == sum(os.path.getsize(os.path.join(mnist_dir, n)) for n in os.listdir(mnist_dir)
                       if os.path.isfile(os.path.join(mnist_dir, n)))
    assert runners.direct_runner_args(2, "auto", mnist_dir) == [
        "--direct_running_mode=in_memory", "--direct_num_workers=2"]


def test_a_folder_over_the_limit_gets_worker_processes(tmp_path):
    nested = tmp_path / "train" / "daisy"
    nested.mkdir(parents=True)
    with open(nested / "big.tfrecord", "wb") as f:  # sparse: no disk used
        f.truncate(runners.AUTO_IN_MEMORY_BYTES + 1)
    (tmp_path / "labels.txt").write_text("daisy\n")
    assert runners.input_bytes(str(tmp_path)) == runners.AUTO_IN_MEMORY_BYTES + 1 + 6
    assert runners.running_mode("auto", str(tmp_path)) == "multi_processing"
    # Counting stops at the limit: it need not walk a 1.28M-file folder to the end.
    assert runners.input_bytes(str(tmp_path), limit=10) > 10


def test_an_explicit_mode_is_kept_and_a_bad_one_refused(tmp_path):
    assert runners.running_mode("multi_threading", str(tmp_path)) == "multi_threading"
    with pytest.raises(ValueError, match="unknown direct running mode 'fast'"):
        runners.running_mode("fast", str(tmp_path))
