// Package e2e holds kneepipe's end-to-end tests. It has no code of its own:
// its tests build the kneepipe binary once, serve a copy of the bundled
// sample (testdata/sample) from a real S3 server (versitygw, started with
// scripts/s3server.sh on 127.0.0.1) as s3://tnn-hse-medtech/datasets/, and
// run the CLI as a subprocess against it and against the local directory.
//
// They check what a user of the notebook replacement relies on: the
// notebook's CSVs byte for byte (testdata/golden/notebook), the same
// artifacts from S3 and from a local directory, deterministic output
// whatever the fetch concurrency, a warm cache that issues no GETs, the
// Parquet artifacts as read by an independent engine (DuckDB), quiet and
// parseable logs, a clear error that leaks no secret on bad credentials, and
// the validate, graph and stages subcommands.
//
// The S3 server is required: if it cannot start, the tests fail rather than
// skip, so `make test` always proves the S3 path.
//
//	go test -count=1 ./e2e
package e2e
