#!/usr/bin/env bash
# fetch-xray-corpus.sh: a corpus of real chest radiographs (not knees) for
# bench/neardup -corpus, written as 8-bit gray PNGs (longest side 512 px)
# with images.csv (path,patient,source,source_file,radiograph) into OUT (default .tools/xray-corpus).
#
# Sources, each pinned; nothing of them is committed to this repository:
#   - the Go module github.com/suyashkumar/dicom@v1.0.7 (module proxy):
#     testdata/4.dcm, one chest CR of TCIA's COVID-19-AR collection (cited in
#     the module's testdata/data_details.md);
#   - Actualmed COVID-19 Chest X-ray Dataset (agchung/Actualmed-COVID-chestxray-dataset
#     at 27240dd8dec9454bc97f9f3c0c432ef434de2517: 238 CR PNGs, 215 patients) and
#     Figure 1 COVID-19 Chest X-ray Dataset (agchung/Figure1-COVID-chestxray-dataset
#     at 95bb569e55f4110d3b734c0f355340e04e16989a: 55 images). Both say "intended
#     to be used for research purposes only" and carry no licence file. They are
#     in no package registry this project reaches: pass a git directory holding
#     that commit as ACTUALMED_GIT / FIGURE1_GIT (a partial clone is fine:
#     images whose blobs are absent are skipped and counted);
#   - COVID-19 image data collection (ieee8023/covid-chestxray-dataset) as copied
#     to joseph-bae/Copy-of-covid-chestxray-dataset at
#     6a46a098d6c5eac8a5f5f4273e5ba8a1b14932d2: of its images, the X-rays that
#     metadata.csv lists with a patient id (134). They come from papers and web
#     sites; metadata.csv gives a licence for some (CC BY-NC-SA, CC BY-NC-ND),
#     none for most. Passed as IEEE8023_GIT.
#
# Needs /usr/bin/python3 with Debian's python3-pil and python3-pydicom, and go.
set -euo pipefail

OUT=${1:-.tools/xray-corpus}
ACTUALMED_COMMIT=27240dd8dec9454bc97f9f3c0c432ef434de2517
FIGURE1_COMMIT=95bb569e55f4110d3b734c0f355340e04e16989a
IEEE8023_COMMIT=6a46a098d6c5eac8a5f5f4273e5ba8a1b14932d2
GO=${GO:-go}
PY=/usr/bin/python3

die() { echo "fetch-xray-corpus: $*" >&2; exit 1; }
"$PY" -c 'import PIL, pydicom, numpy' 2>/dev/null ||
	die "needs Debian's python3-pil, python3-pydicom and python3-numpy (apt-get install python3-pil python3-pydicom)"

SRC=$(mktemp -d)
trap 'rm -rf "$SRC"' EXIT
mkdir -p "$SRC/tcia" "$SRC/actualmed" "$SRC/figure1" "$SRC/ieee8023"

# One chest CR from the Go module's test data.
zip=$(cd "$SRC" && "$GO" mod download -json github.com/suyashkumar/dicom@v1.0.7 |
	sed -n 's/^[[:space:]]*"Zip": "\(.*\)",$/\1/p')
[ -f "$zip" ] || die "go mod download github.com/suyashkumar/dicom@v1.0.7 gave no zip"
unzip -p "$zip" 'github.com/suyashkumar/dicom@v1.0.7/testdata/4.dcm' >"$SRC/tcia/COVID-19-AR-16406488.dcm"

# Blobs of a pinned commit that are present in a git directory.
export_git() { # gitdir commit subdir dest
	local n=0 missing=0
	git -C "$1" cat-file -e "$2^{commit}" 2>/dev/null || die "$1 lacks commit $2"
	git -C "$1" show "$2:metadata.csv" >"$4/metadata.csv"
	while read -r _ _ blob path; do
		if git -C "$1" cat-file -e "$blob" 2>/dev/null; then
			git -C "$1" cat-file blob "$blob" >"$4/$(basename "$path")"
			n=$((n + 1))
		else
			missing=$((missing + 1))
		fi
	done < <(git -C "$1" ls-tree -r "$2" "$3")
	echo "fetch-xray-corpus: $1: $n images, $missing absent from the clone" >&2
}
[ -n "${ACTUALMED_GIT:-}" ] && export_git "$ACTUALMED_GIT" "$ACTUALMED_COMMIT" images "$SRC/actualmed"
[ -n "${FIGURE1_GIT:-}" ] && export_git "$FIGURE1_GIT" "$FIGURE1_COMMIT" images "$SRC/figure1"
[ -n "${IEEE8023_GIT:-}" ] && export_git "$IEEE8023_GIT" "$IEEE8023_COMMIT" images "$SRC/ieee8023"

# Written beside OUT and renamed at the end: a failed run leaves no half corpus.
rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp"
"$PY" - "$SRC" "$OUT.tmp" <<'EOF'
# Converts every source image to 8-bit gray, longest side 512 (area filter),
# and writes images.csv. DICOM: rescale slope/intercept, the first VOI window
# if there is one (else the stored range), MONOCHROME1 inverted.
import csv, os, re, sys
import numpy as np
import pydicom
from PIL import Image

src, out = sys.argv[1], sys.argv[2]

def dicom_gray(path):
    ds = pydicom.dcmread(path)
    a = ds.pixel_array.astype(np.float64) * float(getattr(ds, "RescaleSlope", 1)) + float(getattr(ds, "RescaleIntercept", 0))
    c, w = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
    if c is not None and w is not None:
        c = float(c[0] if isinstance(c, pydicom.multival.MultiValue) else c)
        w = float(w[0] if isinstance(w, pydicom.multival.MultiValue) else w)
        lo, hi = c - w / 2, c + w / 2
    else:
        lo, hi = a.min(), a.max()
    a = np.clip((a - lo) / max(hi - lo, 1e-9), 0, 1) * 255
    if ds.PhotometricInterpretation == "MONOCHROME1":
        a = 255 - a
    return Image.fromarray(np.round(a).astype(np.uint8), "L")

def patients(source):
    meta = os.path.join(src, source, "metadata.csv")
    if not os.path.exists(meta):
        return {}
    rows = list(csv.DictReader(open(meta, newline="", encoding="latin-1")))
    if source == "ieee8023":  # only X-rays it lists with a patient
        return {r["filename"]: r["Patientid"] for r in rows if r["modality"] == "X-ray" and r["Patientid"]}
    return {r["imagename"]: r["patientid"] for r in rows if r.get("imagename")}

rows = []
for source in ("tcia", "actualmed", "figure1", "ieee8023"):
    names = patients(source)
    for name in sorted(os.listdir(os.path.join(src, source))):
        if name == "metadata.csv" or (source == "ieee8023" and name not in names):
            continue
        path = os.path.join(src, source, name)
        img = dicom_gray(path) if name.endswith(".dcm") else Image.open(path).convert("L")
        img.thumbnail((512, 512), Image.Resampling.BOX)
        stem = os.path.splitext(name)[0]
        # Actualmed and ieee8023 name their patients in metadata.csv; Figure
        # 1's files are <patient>[a-z].jpg; the TCIA file is named after its patient.
        patient = names.get(name) or re.sub(r"[a-z]$", "", stem)
        rel = f"{source}/{source}-{len(rows):04d}.png"
        os.makedirs(os.path.join(out, source), exist_ok=True)
        img.save(os.path.join(out, rel))
        rows.append((rel, f"{source}:{patient}", source, name))
# The sources hold a few copies of one radiograph (one image under two
# patient ids, one stored mirrored). They are found here independently of
# kneepipe: the mean absolute difference of 128x128 area-averaged
# thumbnails, as they are or one mirrored, is below 5 gray levels (on these
# sources the copies score 0.4 and 2.4, distinct pairs 18.7 and more).
# Files of one radiograph share the radiograph column (the first's path).
thumbs = np.stack([np.asarray(Image.open(os.path.join(out, r[0])).resize((128, 128), Image.Resampling.BOX), np.float32) for r in rows])
same = list(range(len(rows)))
def root(i):
    while same[i] != i:
        i = same[i]
    return i
for i in range(len(rows)):
    rest = thumbs[i + 1:]
    mad = np.minimum(np.abs(rest - thumbs[i]).mean(axis=(1, 2)), np.abs(rest - thumbs[i][:, ::-1]).mean(axis=(1, 2)))
    for k in np.nonzero(mad < 5)[0]:
        same[root(i + 1 + int(k))] = root(i)
        print(f"fetch-xray-corpus: {rows[i][0]} and {rows[i + 1 + int(k)][0]} are one radiograph (mean difference {mad[k]:.2f})", file=sys.stderr)
with open(os.path.join(out, "images.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["path", "patient", "source", "source_file", "radiograph"])
    w.writerows(r + (rows[root(i)][0],) for i, r in enumerate(rows))
print(f"fetch-xray-corpus: {len(rows)} files, {len({root(i) for i in range(len(rows))})} radiographs, {len({r[1] for r in rows})} patients", file=sys.stderr)
EOF
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
echo "fetch-xray-corpus: wrote $OUT" >&2
