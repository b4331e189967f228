"""MLflow runs as users log them: Keras autolog and the manual API; then MLflow's own reading of
them (its client), as JSON, for the import test to compare with.

Usage: python mlflow_runs.py TRACKING_URI REFERENCE_JSON
"""

import json
import sys

import keras
import mlflow
import numpy as np
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_iris

tracking_uri, reference_path = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(tracking_uri)

mlflow.set_experiment("iris-keras")
iris = load_iris()
x, y = iris.data.astype("float32"), iris.target
keras.utils.set_random_seed(0)
model = keras.Sequential(
    [
        keras.Input(shape=(4,)),
        keras.layers.Dense(8, activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
mlflow.keras.autolog()
with mlflow.start_run(run_name="keras-autolog"):
    model.fit(x[:120], y[:120], validation_data=(x[120:], y[120:]), epochs=3, verbose=0)
mlflow.keras.autolog(disable=True)

mlflow.set_experiment("manual")
with mlflow.start_run(run_name="hand-written loop"):
    mlflow.log_params({"lr": 0.05, "batch_size": 16, "optimizer": "SGD", "layers": "[8, 3]"})
    mlflow.set_tags({"team": "vision", "stage": "try"})
    for step in range(12):
        mlflow.log_metric("loss", float(np.exp(-step / 4)), step=step)
        mlflow.log_metric("epoch", step // 4, step=step)  # as Lightning's MLFlowLogger does
        if step % 4 == 3:
            mlflow.log_metric("val_loss", float(np.exp(-step / 5)), step=step)
    with open("requirements.txt", "w", encoding="utf-8") as handle:
        handle.write("numpy==1.26.4\nscikit-learn==1.5.0\n")
    mlflow.log_artifact("requirements.txt")
with mlflow.start_run(run_name="crashed"):
    mlflow.log_param("lr", 1.0)
    mlflow.log_metric("loss", 9.0, step=0)
    mlflow.end_run(status="FAILED")

client = MlflowClient()
reference = []
for experiment in client.search_experiments():
    for run in client.search_runs([experiment.experiment_id]):
        reference.append(
            {
                "run_id": run.info.run_id,
                "run_name": run.info.run_name,
                "experiment": experiment.name,
                "status": run.info.status,
                "start_time": run.info.start_time,
                "end_time": run.info.end_time,
                "user": run.info.user_id,
                "params": run.data.params,
                "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
                "metrics": {
                    key: [
                        [m.step, m.value] for m in client.get_metric_history(run.info.run_id, key)
                    ]
                    for key in run.data.metrics
                },
            }
        )
with open(reference_path, "w", encoding="utf-8") as handle:
    json.dump(reference, handle, indent=1)
