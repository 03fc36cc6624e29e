"""minio-py against the bundled SeaweedFS server (the ``s3`` fixture)."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from minio.error import S3Error


def test_minio_bucket_put_get_list_delete_multipart(s3):
    client = s3.minio()
    client.make_bucket("mp-test")
    assert client.bucket_exists("mp-test")
    client.put_object("mp-test", "small/a.txt", io.BytesIO(b"hello"), 5)
    data = os.urandom(11 * 1024 * 1024 + 123)
    # unknown length + 5 MiB parts: a real multipart upload
    client.put_object("mp-test", "big/blob.bin", io.BytesIO(data), -1, part_size=5 * 1024 * 1024)
    stat = client.stat_object("mp-test", "big/blob.bin")
    assert stat.size == len(data) and stat.etag.endswith("-3")
    got = client.get_object("mp-test", "big/blob.bin").read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    names = sorted(o.object_name for o in client.list_objects("mp-test", recursive=True))
    assert names == ["big/blob.bin", "small/a.txt"]
    client.remove_object("mp-test", "small/a.txt")
    with pytest.raises(S3Error):
        client.stat_object("mp-test", "small/a.txt")
    assert s3.endpoint.startswith("http://127.0.0.1:") and s3.secret_key not in repr(s3)


def test_wrong_credentials_refused(s3):
    from minio import Minio

    bad = Minio(s3.host, s3.access_key, s3.secret_key + "x", secure=False)
    with pytest.raises(S3Error):
        bad.list_buckets()
