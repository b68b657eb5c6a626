package runner

// defaultConnections is the HTTP pool of a pipeline whose stages declare
// no more.
const defaultConnections = 16

// needsSource says whether any stage reads the pipeline's source.
func needsSource(list []*Stage) bool {
	for _, st := range list {
		if st.Kind.Source {
			return true
		}
	}
	return false
}

// connections sizes the source's HTTP pool for the busiest stage, as each
// kind declares it for its parameters.
func connections(list []*Stage) int {
	n := defaultConnections
	for _, st := range list {
		if st.Kind.Connections != nil {
			n = max(n, st.Kind.Connections(st.Params))
		}
	}
	return n
}
