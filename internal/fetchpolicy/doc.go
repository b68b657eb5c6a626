// Package fetchpolicy holds the decisions a fetch makes about its requests
// to an object store, each small and free of I/O so that it is tested with
// made-up samples and no clock: Window (recent latencies and their
// quantiles), Hedge (when a request is slow enough to be sent again),
// Budget (how many such extra requests a fetch may make) and AIMD (how
// many requests may be in flight, lowered by throttling).
package fetchpolicy
