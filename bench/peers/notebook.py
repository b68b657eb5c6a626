#!/usr/bin/python3
"""Benchmark peer: the EDA notebook itself, against an S3 endpoint.

    /usr/bin/python3 bench/peers/notebook.py OUTDIR

The notebook's code (/work/shared/seed/eda-notebook.txt) cell by cell: a
default boto3 client, the `list_objects` paginator under DATASET_DIR keeping
`.png` keys, `download_fileobj` into a BytesIO per key from a
ThreadPoolExecutor(max_workers=50) via pool.map (which keeps listing order),
SHA-256 and MD5 of the bytes, then the pandas steps (DataFrame, severity_map,
the duplicate check, duplicated/drop_duplicates, pivot, != filter, isin) and
to_csv(index=False) of raw_data.csv, deleted_paths.csv,
different_severity.csv and normalized_data.csv into OUTDIR. The only things
left out are the display widgets (progress bar, image previews).

Configuration comes from the environment, as the notebook's .env did:
  S3_ENDPOINT            endpoint URL (the notebook hard-coded Yandex's)
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION (boto3 reads these)
  BUCKET_NAME            bucket (default kneebench)
  DATASET_DIR            prefix (default datasets/)
Seconds for download and tables go to stderr.

Use Debian's /usr/bin/python3 with python3-boto3 and python3-pandas.
"""

import hashlib
import io
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3
import pandas as pd

s3_client = boto3.client(
    's3',
    endpoint_url=os.environ['S3_ENDPOINT'],
    aws_access_key_id=os.getenv('AWS_ACCESS_KEY_ID'),
    aws_secret_access_key=os.getenv('AWS_SECRET_ACCESS_KEY'),
)
BUCKET_NAME = os.getenv('BUCKET_NAME', 'kneebench')
DATASET_DIR = os.getenv('DATASET_DIR', 'datasets/')


@dataclass()
class Metadata:
    expert: str
    file_id: str
    severity: int
    relative_path: str


def parse_path(key: str) -> Metadata:
    buffer = io.BytesIO()
    s3_client.download_fileobj(BUCKET_NAME, key, buffer)
    data_bytes = buffer.getvalue()
    hash1 = hashlib.sha256(data_bytes).hexdigest()
    hash2 = hashlib.md5(data_bytes).hexdigest()
    path = key.removeprefix(DATASET_DIR)
    expert, severity, _ = path.split('/')
    return Metadata(expert, f'{hash1}:{hash2}', severity, path)


def iterate_by_files():
    paginator = s3_client.get_paginator('list_objects')
    result = paginator.paginate(Bucket=BUCKET_NAME, Prefix=DATASET_DIR)
    for page in result:
        for s3_object in page['Contents']:
            if s3_object['Key'].endswith('.png'):
                yield s3_object['Key']


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    t0 = time.perf_counter()

    raw_data = []
    files = list(iterate_by_files())
    with ThreadPoolExecutor(max_workers=50) as pool:
        for data in pool.map(parse_path, files):
            raw_data.append(data)
    t1 = time.perf_counter()

    data = pd.DataFrame(raw_data)
    data.to_csv(os.path.join(outdir, 'raw_data.csv'), index=False)

    severity_map = {
        '0Normal': 0,
        '1Doubtful': 1,
        '2Mild': 2,
        '3Moderate': 3,
        '4Severe': 4
    }
    data['severity'] = data['severity'].map(severity_map)

    duplicated_files = data[['file_id', 'relative_path', 'expert']].groupby(['file_id', 'expert'], as_index=False).agg('count')
    duplicated_files = duplicated_files[duplicated_files['relative_path'] > 1]
    duplicated_data = data[data['file_id'].isin(duplicated_files['file_id'])]
    check = duplicated_data[['expert', 'severity', 'file_id']].groupby(['expert', 'file_id'], as_index=False).agg(['nunique', 'first'])
    assert (check[('severity', 'nunique')] == 1).all(), 'a duplicate group has conflicting grades'

    deleted_paths = data[data.duplicated(['expert', 'file_id'], keep='first')]['relative_path']
    deleted_paths.to_csv(os.path.join(outdir, 'deleted_paths.csv'), index=False)
    unique_data = data.drop_duplicates(['expert', 'file_id'], keep='first')

    cross_check = unique_data.pivot(
        index='file_id', columns='expert', values='severity'
        ).reset_index()
    cross_check.groupby(
            ['MedicalExpert-I', 'MedicalExpert-II']
            ).agg('count')
    different_level = cross_check[(cross_check['MedicalExpert-II'] != cross_check['MedicalExpert-I'])]

    data[data['file_id'].isin(different_level['file_id'])][['file_id', 'severity', 'relative_path']].to_csv(
        os.path.join(outdir, 'different_severity.csv'), index=False)
    normalized_data = data[~data['file_id'].isin(different_level['file_id'])]
    normalized_data.to_csv(os.path.join(outdir, 'normalized_data.csv'), index=False)
    t2 = time.perf_counter()

    print(f'notebook: boto3 {boto3.__version__} pandas {pd.__version__} objects={len(files)} '
          f'download={t1 - t0:.3f}s tables={t2 - t1:.3f}s', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
