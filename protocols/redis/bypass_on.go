//go:build helios_bypass_classifier

package redis

// bypassClassifier is true only in the test build tagged
// helios_bypass_classifier: proxy mode forwards every command without the
// scope and administrative checks, so that tests can show the upstream's
// ACL users (wall 2) holding on their own. Never build a release with this
// tag.
const bypassClassifier = true
