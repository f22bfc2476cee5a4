//go:build !helios_bypass_classifier

package mysql

// bypassClassifier is false in every real build: proxy mode classifies each
// statement before it leaves (wall 1).
const bypassClassifier = false
