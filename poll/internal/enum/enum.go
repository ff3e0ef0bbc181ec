// Package enum spells the observer's small enumerations (policies,
// origins, verdicts...) for flags, logs and metric labels, and parses the
// flag spellings back. It allocates nothing after the tables are built.
package enum

// Names lists the spellings of an enumeration whose values are 0, 1, 2...
type Names[E ~uint8] []string

// String returns e's spelling, or "invalid" for a value beyond the table.
func (n Names[E]) String(e E) string {
	if int(e) < len(n) {
		return n[e]
	}
	return "invalid"
}

// Parse is the inverse of String for the table's spellings.
func (n Names[E]) Parse(s string) (E, bool) {
	for i, name := range n {
		if name == s {
			return E(i), true
		}
	}
	return 0, false
}
