"""Airflow DAG that runs kneepipe every night.

Put this file in the DAGs folder of a worker that has the kneepipe binary
and persistent storage for the cache and outputs (KNEEPIPE_DATA). Credentials
come from the worker's environment or an Airflow connection exported as
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; kneepipe never prints them.

kneepipe's exit codes:
  0  success
  1  a stage failed (nothing written; retry the task)
  2  bad pipeline file or flags (fix the YAML; retrying will not help)
  3  finished, but some objects could not be fetched: outputs are written
     without them and failed.csv lists them; the next run retries only those
  4  another run holds the cache lock (skipped, try later)
"""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

KNEEPIPE = "/srv/kneepipe/bin/kneepipe"
PIPELINE = "/srv/kneepipe/pipeline.yaml"
DATA = "/data/kneepipe"

with DAG(
    dag_id="kneepipe_knee_xray",
    start_date=datetime(2026, 1, 1),
    schedule="15 2 * * *",
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    tags=["kneepipe", "datasets"],
) as dag:
    run = BashOperator(
        task_id="run",
        bash_command=(
            f"{KNEEPIPE} run -f {PIPELINE} "
            "--source s3://tnn-hse-medtech/datasets/ "
            "--endpoint https://storage.yandexcloud.net --region ru-central1 "
            f"--out {DATA}/out/{{{{ ds }}}} --cache {DATA}/cache "
            "--wait 30m --log-format json"
        ),
        cwd="/srv/kneepipe",
        # Exit 4 (lock busy) marks the task skipped instead of failed.
        skip_on_exit_code=4,
    )

    gc = BashOperator(
        task_id="cache_gc",
        bash_command=f"{KNEEPIPE} cache gc --cache {DATA}/cache --wait 30m",
        trigger_rule="all_done",
    )

    run >> gc
