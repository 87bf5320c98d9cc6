"""Parsing storage URLs into stores, and masking their secrets for logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import FilesystemStore, S3Location, S3Store, mask_url, parse_s3_url, store_from_url


def test_relative_file_url_is_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    store = store_from_url("file://./var/blobs")

    assert isinstance(store, FilesystemStore)
    assert store.root == tmp_path / "var" / "blobs"
    assert store.root.is_dir()


def test_file_url_without_dot_is_relative_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    store = store_from_url("file://var/blobs")

    assert isinstance(store, FilesystemStore)
    assert store.root == tmp_path / "var" / "blobs"


def test_absolute_file_url(tmp_path: Path) -> None:
    store = store_from_url(f"file://{tmp_path}/abs%20path")

    assert isinstance(store, FilesystemStore)
    assert store.root == tmp_path / "abs path"


def test_file_url_with_localhost_is_absolute(tmp_path: Path) -> None:
    store = store_from_url(f"file://localhost{tmp_path}/blobs")

    assert isinstance(store, FilesystemStore)
    assert store.root == tmp_path / "blobs"


def test_s3_url_gives_an_s3_store_without_contacting_the_server() -> None:
    store = store_from_url("s3://eakte:s3cret@127.0.0.1:1/akten?secure=false")

    assert isinstance(store, S3Store)
    assert store.endpoint == "127.0.0.1:1"
    assert store.bucket == "akten"
    assert store.secure is False
    assert "s3cret" not in repr(store)


def test_s3_url_parts_are_percent_decoded() -> None:
    location = parse_s3_url(
        "s3://svc%40amt:p%2Fa%3As%25s@s3.example.org:9000/akten?secure=false&region=eu-central-1"
    )

    assert location == S3Location(
        endpoint="s3.example.org:9000",
        access_key="svc@amt",
        secret_key="p/a:s%s",
        bucket="akten",
        secure=False,
        region="eu-central-1",
    )


def test_s3_url_is_secure_by_default_and_port_is_optional() -> None:
    location = parse_s3_url("s3://a:b@s3.example.org/akten")

    assert location.secure is True
    assert location.endpoint == "s3.example.org"
    assert location.region is None


def test_s3_url_tunes_multipart_uploads() -> None:
    store = store_from_url("s3://a:b@127.0.0.1:9000/akten?part_size_mib=16&parallel_parts=3")

    assert isinstance(store, S3Store)
    assert (store.part_size, store.parallel_parts) == (16 * 1024 * 1024, 3)


def test_s3_url_with_ipv6_host() -> None:
    assert parse_s3_url("s3://a:b@[::1]:8333/akten").endpoint == "[::1]:8333"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://a:b@host:9000", "one bucket name"),
        ("s3://a:b@host:9000/one/two", "one bucket name"),
        ("s3://host:9000/akten", "ACCESS:SECRET@"),
        ("s3://onlyuser@host:9000/akten", "ACCESS:SECRET@"),
        ("s3://a:b@host:port/akten", "invalid port"),
        ("s3://a:b@host:9000/akten?secure=maybe", "secure must be true or false"),
        ("s3://a:b@host:9000/akten?tls=true", "unknown option"),
        ("s3://a:b@host:9000/akten?part_size_mib=4", "part_size_mib must be between 5 and"),
        ("s3://a:b@host:9000/akten?parallel_parts=0", "parallel_parts must be a whole number"),
        ("s3://a:b@host:9000/akten?parallel_parts=two", "parallel_parts must be a whole number"),
        ("s3://a:b@/akten", "no host"),
    ],
)
def test_malformed_s3_urls_are_refused_readably(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        store_from_url(url)


@pytest.mark.parametrize(
    "url", ["http://a:b@host/bucket", "ftp://host/x", "/var/blobs", "var/blobs", ""]
)
def test_unknown_schemes_are_refused_with_the_supported_ones(url: str) -> None:
    with pytest.raises(ValueError, match=r"unsupported storage URL .*file://PATH or s3://"):
        store_from_url(url)


def test_errors_do_not_reveal_the_secret() -> None:
    with pytest.raises(ValueError) as raised:
        store_from_url("s3://eakte:topsecret@host:9000/akten?tls=1")
    assert "topsecret" not in str(raised.value)

    with pytest.raises(ValueError) as raised:
        store_from_url("http://eakte:topsecret@host/akten")
    assert "topsecret" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "s3://eakte:topsecret@127.0.0.1:8333/akten?secure=false",
            "s3://eakte:***@127.0.0.1:8333/akten?secure=false",
        ),
        ("s3://svc%40amt:p%2Fw@host/b", "s3://svc%40amt:***@host/b"),
        ("file://./var/blobs", "file://./var/blobs"),
        ("s3://host/bucket", "s3://host/bucket"),
    ],
)
def test_mask_url_hides_only_the_secret(url: str, masked: str) -> None:
    assert mask_url(url) == masked
