// Package docs holds no code, only tests that keep the repository's prose
// honest: every Markdown file that a comment or document names exists, no
// comment points at an issue tracker the repository does not carry, and
// the observer's reference (cmd/varta-watch/README.md) lists exactly the
// flags its --help prints and only metric families the code serves.
package docs
