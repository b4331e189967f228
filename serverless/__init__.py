"""Generate inference handlers and package them as AWS Lambda container images."""
