package main

// Target is one of the goals, with the figure that decides it.
type Target struct {
	Goal   string
	Met    bool
	Figure string
	// Missing is set when the measurement it needs did not run.
	Missing bool
}

func targetsTable(ts []Target) table {
	t := table{Header: []string{"Target", "Result", "Figure"}}
	for _, x := range ts {
		res := "not met"
		switch {
		case x.Missing:
			res = "not measured"
		case x.Met:
			res = "met"
		}
		t.add(x.Goal, res, x.Figure)
	}
	return t
}
