"""Airflow DAG: kneepipe as SHARDS mapped tasks, then the merge.

plan lists the bucket once into WORK (on S3: Airflow workers share no
disk); one mapped task per shard (dynamic task mapping, `.partial().expand()`
over the shard indices) fetches that shard's objects; merge runs after all
of them and writes what one `kneepipe run` would. A failed shard is retried
alone (its retries, or "Clear" on that map index), and resumes from its
record. SHARDS must stay within [core] max_map_length (default 1024).

Exit codes as for `kneepipe run`: 1 failed (retry), 2 bad pipeline or
flags, 3 some objects could not be fetched (the shard's retry fetches only
those), 4 lock busy.

The *_ARGS lists are the commands; kneepipe's `make test` parses them as
kneepipe invocations, so keep them literal lists.
"""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

KNEEPIPE = "/srv/kneepipe/bin/kneepipe"
SHARDS = 64
MAX_MAP_LENGTH = 1024  # Airflow's [core] max_map_length default
if not 1 <= SHARDS <= MAX_MAP_LENGTH:
    raise ValueError(f"SHARDS={SHARDS}: Airflow maps at most {MAX_MAP_LENGTH} tasks")

SOURCE_ARGS = [
    "-f", "/srv/kneepipe/pipeline.yaml",
    "--source", "s3://tnn-hse-medtech/datasets/",
    "--endpoint", "https://storage.yandexcloud.net", "--region", "ru-central1",
    "--work", "s3://kneepipe-work/{{ ds }}/",
    "--log-format", "json",
]
PLAN_ARGS = ["shard", "plan", "--shards", str(SHARDS)] + SOURCE_ARGS
# KNEEPIPE_SHARD is set per mapped task (see expand below); N stays explicit.
SHARD_ARGS = ["shard", "run", "--shard-index-from", "KNEEPIPE_SHARD", "--shards", str(SHARDS),
              "--cache", "/tmp/kneepipe-cache"] + SOURCE_ARGS
MERGE_ARGS = ["shard", "merge", "--out", "/data/kneepipe/out/{{ ds }}",
              "--cache", "/data/kneepipe/cache", "--wait", "30m"] + SOURCE_ARGS


def command(args):
    return " ".join([KNEEPIPE] + args)


with DAG(
    dag_id="kneepipe_knee_xray_sharded",
    start_date=datetime(2026, 1, 1),
    schedule="15 2 * * *",
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["kneepipe", "datasets"],
) as dag:
    plan = BashOperator(task_id="plan", bash_command=command(PLAN_ARGS))

    shards = BashOperator.partial(
        task_id="shard",
        bash_command=command(SHARD_ARGS),
        append_env=True,  # keep the worker's environment (AWS keys) beside KNEEPIPE_SHARD
        max_active_tis_per_dag=16,  # shards running at once
    ).expand(env=[{"KNEEPIPE_SHARD": str(i)} for i in range(SHARDS)])

    merge = BashOperator(task_id="merge", bash_command=command(MERGE_ARGS), skip_on_exit_code=4)

    plan >> shards >> merge
