package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Writer is a store that also takes objects: an S3 prefix used as a
// sharded run's work directory.
type Writer interface {
	Store
	// Put stores data under key whole or not at all (one PUT).
	Put(ctx context.Context, key string, data []byte) error
	// Key is the full key of a name under the store's prefix.
	Key(name string) string
}

// Put uploads one object in a single request, so readers see the old
// object or the new one, never a part.
func (s *s3Store) Put(ctx context.Context, key string, data []byte) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key),
		Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", s.bucket, key, explain(err))
	}
	return nil
}

// Key joins the store's prefix and a name.
func (s *s3Store) Key(name string) string {
	if s.prefix == "" || strings.HasSuffix(s.prefix, "/") {
		return s.prefix + name
	}
	return s.prefix + "/" + name
}

// NotFound says whether a Get failed because the object does not exist.
func NotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	return errors.As(err, &nsk) || errors.As(err, &nf)
}
