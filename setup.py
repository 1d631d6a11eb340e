"""model-garden: classic TensorFlow models as production TFX pipelines."""
import setuptools

setuptools.setup(
    name="model-garden",
    version="0.1.0",
    description=(
        "TensorFlow Official Models as TFX pipelines, with registries for the TF-Slim zoo "
        "(local BeamDagRunner and Kubeflow Pipelines v2)."
    ),
    packages=setuptools.find_packages(include=["model_garden", "model_garden.*"]),
    package_data={"model_garden": ["schemas/*.pbtxt"]},
    python_requires=">=3.9,<3.11",
    # Loose ranges here; the exact, tested set is requirements.lock.
    install_requires=[
        "tfx[kfp]==1.16.0",
        "tensorflow>=2.16,<2.17",
        "tf-keras>=2.16,<2.17",
        "dill",
        "kfp>=2,<3",
        "kfp-kubernetes",
        "click>=8",
        "tqdm",
        "pyyaml",
        "matplotlib",
        "rich",
    ],
    entry_points={"console_scripts": ["model-garden=model_garden.cli:main"]},
)
