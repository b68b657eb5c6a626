#!/usr/bin/python3
"""Reference implementation: the EDA notebook's pandas code over a local directory.

Usage (use Debian's Python, which has pandas from `apt-get install python3-pandas`;
a `python3` found first on PATH, e.g. a pyenv one, may lack pandas):

    /usr/bin/python3 testdata/reference/notebook.py ROOT OUTDIR

ROOT plays the part of the bucket prefix `datasets/`: every regular file under it
is an "object" whose key is its path relative to ROOT with '/' separators. Keys
are listed in byte order of the whole UTF-8 key (as S3 lists them) and those
ending in `.png` are kept. Each file's bytes are hashed with SHA-256 and MD5 and
`file_id = "<sha256hex>:<md5hex>"`.

From there the code follows the notebook cell by cell (DataFrame from rows,
severity_map, the duplicate check, duplicated/drop_duplicates keep='first',
pivot, the != filter, isin, to_csv(index=False)) and writes into OUTDIR:

    raw_data.csv            expert,file_id,severity,relative_path (folder labels)
    deleted_paths.csv       relative_path of every surplus in-expert duplicate
    different_severity.csv  file_id,severity,relative_path of the disagreements
    normalized_data.csv     all other rows, taken BEFORE de-duplication

It also prints the agreement matrix and a few counts. Note the notebook's
own quirk, kept here on purpose: an image present under one expert only gets
NaN for the other expert in the pivot, NaN != grade is True, so it counts as a
"disagreement" (it goes to different_severity.csv, not normalized_data.csv),
while the agreement matrix (groupby drops NaN keys) leaves it out.
"""

import hashlib
import os
import sys
from dataclasses import dataclass

import pandas as pd


@dataclass()
class Metadata:
    expert: str
    file_id: str
    severity: int
    relative_path: str


def iterate_by_files(root):
    """All keys under root in S3 listing order (byte order), .png only."""
    keys = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            keys.append(rel.replace(os.sep, '/'))
    keys.sort(key=lambda k: k.encode('utf-8'))
    for key in keys:
        if key.endswith('.png'):
            yield key


def parse_path(root, key):
    with open(os.path.join(root, *key.split('/')), 'rb') as f:
        data_bytes = f.read()
    hash1 = hashlib.sha256(data_bytes).hexdigest()
    hash2 = hashlib.md5(data_bytes).hexdigest()
    path = key  # keys are already relative to the "prefix" ROOT
    expert, severity, _ = path.split('/')
    return Metadata(expert, f'{hash1}:{hash2}', severity, path)


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    root, outdir = argv[1], argv[2]
    os.makedirs(outdir, exist_ok=True)

    # Collecting the metadata (the notebook used a 50-thread pool.map, which
    # keeps the listing order; a plain loop gives the same rows).
    raw_data = [parse_path(root, key) for key in iterate_by_files(root)]

    # Building the dataset
    data = pd.DataFrame(raw_data)
    data.to_csv(os.path.join(outdir, 'raw_data.csv'), index=False)

    # Normalizing
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

    # The notebook checked by hand that each duplicate group has one grade.
    duplicated_data = data[data['file_id'].isin(duplicated_files['file_id'])]
    check = duplicated_data[['expert', 'severity', 'file_id']].groupby(['expert', 'file_id'], as_index=False).agg(['nunique', 'first'])
    assert (check[('severity', 'nunique')] == 1).all(), 'a duplicate group has conflicting grades'

    deleted_paths = data[data.duplicated(['expert', 'file_id'], keep='first')]['relative_path']
    deleted_paths.to_csv(os.path.join(outdir, 'deleted_paths.csv'), index=False)

    unique_data = data.drop_duplicates(['expert', 'file_id'], keep='first')

    # Analysis of the normalized data
    cross_check = unique_data.pivot(
        index='file_id', columns='expert', values='severity'
        ).reset_index()
    matrix = cross_check.groupby(
            ['MedicalExpert-I', 'MedicalExpert-II']
            ).agg('count')

    different_level = cross_check[(cross_check['MedicalExpert-II']!=cross_check['MedicalExpert-I'])]

    data[data['file_id'].isin(different_level['file_id'])][['file_id', 'severity', 'relative_path']].to_csv(
        os.path.join(outdir, 'different_severity.csv'), index=False)

    normalized_data = data[~data['file_id'].isin(different_level['file_id'])]
    normalized_data.to_csv(os.path.join(outdir, 'normalized_data.csv'), index=False)

    # Report
    print(f'pandas {pd.__version__}')
    print(f'rows: {len(data)}; distinct file_ids: {data["file_id"].nunique()}')
    print('rows per expert per grade:')
    print(data.groupby(['expert', 'severity']).size().unstack(fill_value=0).to_string())
    print(f'in-expert duplicate groups: {len(duplicated_files)}; '
          f'surplus rows: {int((duplicated_files["relative_path"] - 1).sum())}')
    print('agreement matrix (MedicalExpert-I, MedicalExpert-II) -> items:')
    for (g1, g2), n in matrix['file_id'].items():
        print(f'  ({int(g1)},{int(g2)}) {n}')
    only_one = cross_check[cross_check[['MedicalExpert-I', 'MedicalExpert-II']].isna().any(axis=1)]
    print(f'items under one expert only (NaN in the pivot): {len(only_one)}')
    print(f'disagreements (notebook filter, incl. one-expert items): {len(different_level)}')
    print(f'deleted_paths.csv rows: {len(deleted_paths)}')
    print(f'different_severity.csv rows: {int(data["file_id"].isin(different_level["file_id"]).sum())}')
    print(f'normalized_data.csv rows: {len(normalized_data)}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
