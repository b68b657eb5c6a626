package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

type s3Store struct {
	client *s3.Client
	bucket string
	prefix string
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
	return &s3Store{client: client, bucket: bucket, prefix: prefix}, nil
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

func (s *s3Store) List(ctx context.Context, fn func(Object) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", s.bucket, s.prefix, explain(err))
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if err := fn(Object{
				Key:          key,
				Rel:          strings.TrimPrefix(key, s.prefix),
				Size:         aws.ToInt64(o.Size),
				ETag:         strings.Trim(aws.ToString(o.ETag), `"`),
				LastModified: aws.ToTime(o.LastModified).UTC(),
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *s3Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, explain(err)
	}
	return out.Body, nil
}

func (s *s3Store) URI(key string) string { return "s3://" + s.bucket + "/" + key }

// explain turns the SDK's common failures into a sentence that says what
// to check. It never includes credentials: the SDK's errors do not carry them.
func explain(err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden":
			return fmt.Errorf("%w: access denied (check the access key and secret): %w", ErrPermanent, err)
		case "NoSuchBucket":
			return fmt.Errorf("%w: bucket does not exist: %w", ErrPermanent, err)
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%w: object does not exist: %w", ErrPermanent, err)
		}
	}
	return err
}
