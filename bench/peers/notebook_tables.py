#!/usr/bin/python3
"""Benchmark peer: the EDA notebook's table steps in pandas, from a raw_data.csv.

    /usr/bin/python3 bench/peers/notebook_tables.py RAW_DATA_CSV OUTDIR

The same work `kneepipe run -f examples/notebook-from-csv.yaml` does with
MANIFEST=RAW_DATA_CSV, cell by cell as the notebook wrote it (see
/work/shared/seed/eda-notebook.txt): read_csv, severity_map, the duplicate
groupby and its one-grade check, duplicated/drop_duplicates keep='first',
pivot, the agreement-matrix groupby, the != filter, isin / ~isin, and
to_csv(index=False) x3 into OUTDIR (deleted_paths.csv, different_severity.csv,
normalized_data.csv). Per-step seconds go to stderr.

Use Debian's /usr/bin/python3 with python3-pandas (pandas 1.5.3 on bookworm).
"""

import os
import sys
import time

import pandas as pd


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, outdir = argv[1], argv[2]
    os.makedirs(outdir, exist_ok=True)
    t0 = last = time.perf_counter()
    steps = []

    def step(name):
        nonlocal last
        now = time.perf_counter()
        steps.append(f'{name}={now - last:.3f}')
        last = now

    data = pd.read_csv(src)
    step('read_csv')

    severity_map = {
        '0Normal': 0,
        '1Doubtful': 1,
        '2Mild': 2,
        '3Moderate': 3,
        '4Severe': 4
    }
    data['severity'] = data['severity'].map(severity_map)
    step('map')

    duplicated_files = data[['file_id', 'relative_path', 'expert']].groupby(['file_id', 'expert'], as_index=False).agg('count')
    duplicated_files = duplicated_files[duplicated_files['relative_path'] > 1]
    duplicated_data = data[data['file_id'].isin(duplicated_files['file_id'])]
    check = duplicated_data[['expert', 'severity', 'file_id']].groupby(['expert', 'file_id'], as_index=False).agg(['nunique', 'first'])
    assert (check[('severity', 'nunique')] == 1).all(), 'a duplicate group has conflicting grades'
    step('dup_check')

    deleted_paths = data[data.duplicated(['expert', 'file_id'], keep='first')]['relative_path']
    deleted_paths.to_csv(os.path.join(outdir, 'deleted_paths.csv'), index=False)
    unique_data = data.drop_duplicates(['expert', 'file_id'], keep='first')
    step('dedupe+csv')

    cross_check = unique_data.pivot(
        index='file_id', columns='expert', values='severity'
        ).reset_index()
    matrix = cross_check.groupby(
            ['MedicalExpert-I', 'MedicalExpert-II']
            ).agg('count')
    different_level = cross_check[(cross_check['MedicalExpert-II'] != cross_check['MedicalExpert-I'])]
    step('pivot')

    data[data['file_id'].isin(different_level['file_id'])][['file_id', 'severity', 'relative_path']].to_csv(
        os.path.join(outdir, 'different_severity.csv'), index=False)
    normalized_data = data[~data['file_id'].isin(different_level['file_id'])]
    normalized_data.to_csv(os.path.join(outdir, 'normalized_data.csv'), index=False)
    step('filter+csv')

    print(f'notebook_tables: pandas {pd.__version__} rows={len(data)} deleted={len(deleted_paths)} '
          f'disagreements={len(different_level)} matrix_cells={len(matrix)} '
          f'normalized={len(normalized_data)} total={time.perf_counter() - t0:.3f}s '
          + ' '.join(steps), file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
