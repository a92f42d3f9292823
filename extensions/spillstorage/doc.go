// Package spillstorage is a storage extension for the persistent sending
// queue: keys and small values stay in another storage extension
// (file_storage), and each large value is a file of its own.
//
//go:generate mdatagen metadata.yaml
package spillstorage // import "github.com/decisiontrace/decisiontrace/extensions/spillstorage"
