//go:build !helios_bypass_classifier

package redis

// bypassClassifier is false in every real build: proxy mode checks each
// command's scope before it leaves (wall 1).
const bypassClassifier = false
