//go:build helios_bypass_classifier

package mysql

// bypassClassifier is true only in the test build tagged
// helios_bypass_classifier: proxy mode forwards every COM_QUERY and
// COM_STMT_PREPARE without the scope check, so that tests can show the
// upstream user (wall 2) holding on its own. Never build a release with
// this tag.
const bypassClassifier = true
