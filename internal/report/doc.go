// Package report builds kneepipe's exploratory data analysis report: one
// self-contained report.html (inline CSS, inline SVG charts, thumbnails
// embedded as data: URIs, no script and no network) and a
// machine-readable summary.json, from the graded rows of a dataset and the
// cross-check of its raters.
//
// The report shows:
//   - counts per rater × grade (the notebook's class tables), as a chart
//     and a table: files as listed, and distinct images;
//   - in-expert duplicate groups (one rater holding the same bytes more
//     than once) with their thumbnails side by side;
//   - the agreement matrix of every pair of raters as a heatmap, and
//     Cohen's kappas (unweighted, linear, quadratic) with 95 % intervals;
//   - every disagreement with its thumbnail and each rater's grade;
//   - what the clean table leaves out: objects per exclusion reason, and
//     the objects no other section shows (rejected, failed) with why;
//   - image properties (size, pixel format) per grade, with a warning when
//     a property nearly determines the grade (see below);
//   - optionally, the mean image of every grade.
//
// # Size
//
// The page stays a few MB whatever the bucket: a duplicate group shows its
// first copies, the first groups and disagreements have thumbnails, the
// next ones are a compact table, and the rest are counted ("+N more");
// excluded objects are listed up to a cap per reason (Options). Only the
// images shown are fetched, and summary.json lists what the page lists,
// with the totals.
//
// # Observations
//
// Property statistics count observations: one per (rater, item) pair, so
// an image one rater stored twice counts once for that rater, and an image
// two raters graded counts once per rater (under the grade each gave).
//
// # "Nearly determines"
//
// Let s be the warning share (default 0.95) and m the least number of
// images (default 5). A property with at least two values among the
// observations draws a warning when
//
//  1. a grade nearly has one value: of the grade's n ≥ m observations a
//     share ≥ s have one value v, while among the observations of all
//     other grades v's share is < s (the other grades vary where this one
//     does not — in the real knee data grade 4 has only the small size, so
//     "large image" rules grade 4 out) — unless every other value seen in
//     the other grades already drew a warning of kind 2, which then says
//     the same thing better; or
//  2. a value nearly has one grade: of the n ≥ m observations with value v
//     a share ≥ s carry one grade g, while g's share among all
//     observations is < s (v singles g out; it is not just that nearly
//     everything is g).
//
// Each warning names the property, the grade, the value, the share and
// the counts; summary.json holds the same facts. Beside the warnings, the
// report gives for each property the accuracy of guessing the grade from
// the property alone (the most common grade of each value) against
// guessing the most common grade overall.
//
// # Determinism
//
// The same inputs and images give byte-identical files: no timestamps,
// every list sorted, maps encoded with sorted keys, thumbnails and mean
// images decoded, resampled with integer arithmetic and encoded by Go's
// image/png.
package report
