package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/kneepipe/kneepipe/internal/safe"
)

type s3Store struct {
	client    *s3.Client
	bucket    string
	prefix    string
	listDepth int
}

func openS3(ctx context.Context, cfg Config, bucket, prefix string, lookup func(string) (string, bool)) (*s3Store, error) {
	conns := max(cfg.Connections, 16)
	// AWS_CA_BUNDLE makes the SDK reject a plain *http.Client, so the
	// transport is tuned through the SDK's own buildable client.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = conns * 2
		t.MaxIdleConnsPerHost = conns * 2
		t.ResponseHeaderTimeout = 30 * time.Second
	}).WithDialerOptions(func(d *net.Dialer) {
		d.Timeout = 10 * time.Second
	})

	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	} else if r, ok := lookup("AWS_REGION"); ok && r != "" {
		opts = append(opts, config.WithRegion(r))
	} else {
		opts = append(opts, config.WithDefaultRegion("us-east-1"))
	}
	// Keys in a .env file (as the notebook loaded them) count like the
	// environment; otherwise the SDK's chain (environment, profile, ...) decides.
	id, okID := lookup("AWS_ACCESS_KEY_ID")
	secret, okSecret := lookup("AWS_SECRET_ACCESS_KEY")
	if okID && okSecret && id != "" && secret != "" {
		token, _ := lookup("AWS_SESSION_TOKEN")
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(id, secret, token)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 config: %w", err)
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint, _ = lookup("AWS_ENDPOINT_URL_S3")
	}
	pathStyle := cfg.PathStyle != nil && *cfg.PathStyle
	if cfg.PathStyle == nil {
		pathStyle = isLocalEndpoint(endpoint)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = pathStyle
		// Servers that send no checksum (versitygw, many S3 clones) would
		// otherwise get one log line per GET.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return &s3Store{client: client, bucket: bucket, prefix: prefix, listDepth: cfg.ListDepth}, nil
}

// isLocalEndpoint says whether an endpoint's host is an IP address or
// localhost, where virtual-hosted bucket names cannot resolve.
func isLocalEndpoint(endpoint string) bool {
	if endpoint == "" {
		return false
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	host := u.Hostname()
	return host == "localhost" || net.ParseIP(host) != nil
}

// List lists the prefix in key order. The first listDepth levels of
// "folders" (common prefixes under '/') are discovered with a delimiter and
// listed concurrently, each one flat below that level; the results are
// sorted by key, as one flat listing returns them. A listing of a few
// thousand keys then takes a fraction of the time of one paginated walk.
func (s *s3Store) List(ctx context.Context, fn func(Object) error) error {
	var mu sync.Mutex
	var objs []Object
	add := func(page []types.Object) {
		mu.Lock()
		defer mu.Unlock()
		for _, o := range page {
			key := aws.ToString(o.Key)
			objs = append(objs, Object{
				Key:          key,
				Rel:          strings.TrimPrefix(key, s.prefix),
				Size:         aws.ToInt64(o.Size),
				ETag:         strings.Trim(aws.ToString(o.ETag), `"`),
				LastModified: aws.ToTime(o.LastModified).UTC(),
			})
		}
	}
	prefixes := []string{s.prefix}
	for level := 0; level < s.listDepth && len(prefixes) > 0; level++ {
		var next []string
		err := parallel(ctx, prefixes, listWorkers, func(ctx context.Context, prefix string) error {
			sub, err := s.listPrefix(ctx, prefix, "/", add)
			mu.Lock()
			next = append(next, sub...)
			mu.Unlock()
			return err
		})
		if err != nil {
			return err
		}
		prefixes = next
	}
	err := parallel(ctx, prefixes, listWorkers, func(ctx context.Context, prefix string) error {
		_, err := s.listPrefix(ctx, prefix, "", add)
		return err
	})
	if err != nil {
		return err
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	for _, o := range objs {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

// listWorkers bounds concurrent list requests.
const listWorkers = 8

// listPrefix pages through one prefix, passing objects to add and
// returning the common prefixes (with a delimiter).
func (s *s3Store) listPrefix(ctx context.Context, prefix, delimiter string, add func([]types.Object)) ([]string, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(prefix)}
	if delimiter != "" {
		in.Delimiter = aws.String(delimiter)
	}
	var subs []string
	p := s3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx, func(o *s3.Options) {
			o.APIOptions = append(o.APIOptions, fastListDecoding)
		})
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", s.bucket, prefix, explain(err))
		}
		add(page.Contents)
		for _, cp := range page.CommonPrefixes {
			subs = append(subs, aws.ToString(cp.Prefix))
		}
	}
	return subs, nil
}

// parallel runs fn for every item with at most n at once and returns the
// first error, cancelling the rest.
func parallel(ctx context.Context, items []string, n int, fn func(context.Context, string) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, n)
	workers := safe.NewGroup(cancel)
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		workers.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, it); err != nil {
				cancel(err)
			}
		})
	}
	if err := workers.Wait(); err != nil {
		return err
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

func (s *s3Store) Get(ctx context.Context, key string) (io.ReadCloser, Version, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)},
		// Retry (with its Tail) retries GETs itself: it must see each 503
		// SlowDown to lower the fetch's concurrency, and a retry the SDK
		// makes inside one request would hide it and run past the stall
		// watchdog. Listings keep the SDK's retries.
		func(o *s3.Options) { o.Retryer = aws.NopRetryer{} })
	if err != nil {
		return nil, Version{}, explain(err)
	}
	v := Version{Size: -1, ETag: strings.Trim(aws.ToString(out.ETag), `"`), LastModified: aws.ToTime(out.LastModified).UTC()}
	if out.ContentLength != nil {
		v.Size = *out.ContentLength
	}
	return out.Body, v, nil
}

func (s *s3Store) URI(key string) string { return "s3://" + s.bucket + "/" + key }

// explain turns the SDK's common failures into a sentence that says what
// to check. It never includes credentials: the SDK's errors do not carry them.
func explain(err error) error {
	if noCredentials(err) {
		return errNoCredentials{err}
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden":
			return fmt.Errorf("%w: access denied (check the access key and secret): %w", ErrPermanent, err)
		case "NoSuchBucket":
			return fmt.Errorf("%w: bucket does not exist: %w", ErrPermanent, err)
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%w: object does not exist: %w", ErrPermanent, err)
		case "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests", "TooManyRequestsException", "RequestThrottled":
			return fmt.Errorf("%w: %w", ErrThrottled, err)
		}
	}
	var httpErr *awshttp.ResponseError
	if errors.As(err, &httpErr) && httpErr.HTTPStatusCode() == http.StatusTooManyRequests {
		return fmt.Errorf("%w: %w", ErrThrottled, err)
	}
	return err
}

// noCredentials says whether the SDK found no credentials: its chain
// (environment, shared files, containers) came up empty and fell through
// to the EC2 instance metadata service, which failed too. The IMDS error
// sits under the S3 operation's own, so the chain is walked.
func noCredentials(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if op, ok := err.(*smithy.OperationError); ok && op.ServiceID == "ec2imds" {
			return true
		}
	}
	return false
}

// errNoCredentials replaces the SDK's account of the empty chain (an IMDS
// error, meaningless off EC2) with what to set. It is permanent, and
// keeps the SDK's error for errors.Is and errors.As.
type errNoCredentials struct{ sdk error }

func (errNoCredentials) Error() string {
	return "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (in the environment or a .env file) or AWS_PROFILE"
}

func (e errNoCredentials) Unwrap() []error { return []error{ErrPermanent, e.sdk} }
