//go:build helios_bypass_classifier

package postgres

// bypassClassifier is true only in the test build tagged
// helios_bypass_classifier: proxy mode forwards every statement unclassified,
// so that tests can show the upstream role (wall 2) holding on its own.
// Never build a release with this tag.
const bypassClassifier = true
