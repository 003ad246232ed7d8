"""The pieces of `input_file` handling: the SSRF policy, data URLs, file kinds, names, text, and
the `files` / `backends[].file_inputs` settings."""

from __future__ import annotations

import ipaddress

import pytest

from responses_gateway.config import settings_from_dict
from responses_gateway.errors import ConfigError
from responses_gateway.files import _name
from responses_gateway.files._extract import Bounds, pdf_text, plain_text
from responses_gateway.files._fetch import FetchPolicy
from responses_gateway.files._source import FileProblem, Source, decoded_size, from_file_data, split_data_url
from responses_gateway.protocol.items import InputFile
from tests.support.pdfs import encrypt_pdf, make_pdf


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("fe80::1%eth0", False),
        ("fd00::1", False),
    ],
)
def test_only_public_addresses_by_default(host: str, allowed: bool) -> None:
    assert FetchPolicy(1.0, 1).allows(host) is allowed


def test_allowed_networks_open_private_ones() -> None:
    policy = FetchPolicy(1.0, 1, (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8")))
    assert policy.allows("127.0.0.1") and policy.allows("10.9.9.9") and policy.allows("::ffff:10.0.0.1")
    assert not policy.allows("127.0.0.2") and not policy.allows("192.168.1.1")


def test_data_urls() -> None:
    assert split_data_url("data:application/pdf;base64,QUJD") == ("application/pdf", "QUJD")
    assert split_data_url("data:Text/Plain; charset=utf-8;base64,QQ==") == ("text/plain", "QQ==")
    assert split_data_url("QUJD") == ("", "QUJD")
    with pytest.raises(FileProblem, match="not a base64 data URL"):
        split_data_url("data:text/plain,abc")
    assert [decoded_size(p) for p in ("", "QQ==", "QUI=", "QUJD")] == [0, 1, 2, 3]
    assert from_file_data("data:text/plain;base64,QUJD", 3) == Source(b"ABC", "text/plain")
    with pytest.raises(FileProblem, match=r"files\.max_bytes \(2 bytes\)"):
        from_file_data("data:text/plain;base64,QUJD", 2)


@pytest.mark.parametrize(
    ("source", "filename", "kind"),
    [
        (Source(b"x", "application/pdf"), None, "pdf"),
        (Source(b"%PDF-1.7", ""), None, "pdf"),
        (Source(b"x", "application/octet-stream"), "a.PDF", "pdf"),
        (Source(b"x", "text/csv"), None, "text"),
        (Source(b"x", "application/ld+json"), None, "text"),
        (Source(b"x", "application/x-yaml"), None, "text"),
        (Source(b"x", ""), "notes", "text"),
    ],
)
def test_kinds(source: Source, filename: str | None, kind: str) -> None:
    assert source.kind(filename) == kind


def test_unsupported_kinds_say_what_is_read() -> None:
    with pytest.raises(FileProblem, match="input_image"):
        Source(b"x", "image/png").kind("a.png")
    with pytest.raises(FileProblem, match="only PDF and UTF-8 text"):
        Source(b"PK", "application/vnd.openxmlformats-officedocument.wordprocessingml.document").kind(
            "a.docx"
        )


def test_text_and_names() -> None:
    assert plain_text("\ufeffhé".encode(), 10) == "hé"
    with pytest.raises(FileProblem, match="binary"):
        plain_text(b"a\x00b", 10)
    with pytest.raises(FileProblem, match="max_text_chars"):
        plain_text(b"abc", 2)
    assert _name(InputFile(file_data="x", filename='a"<b>.txt\n')) == "ab.txt"
    assert _name(InputFile(file_url="https://h/x/report.pdf?sig=1")) == "report.pdf"
    assert _name(InputFile(file_url="https://h/")) == "h"
    assert _name(InputFile(file_data="x")) == "file"


def _config_error(data: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as info:
        settings_from_dict(data, {})
    return str(info.value)


def test_settings() -> None:
    s = settings_from_dict({"backends": [{"name": "b", "base_url": "http://h"}]}, {})
    assert s.backends[0].file_inputs == "extract" and s.files.max_bytes == 10 * 1024 * 1024
    assert s.files.fetch_allowed_networks == [] and s.files.fetch_urls is True
    assert _config_error({"files": {"fetch_allowed_networks": ["nope"]}}).startswith(
        "files.fetch_allowed_networks"
    )
    message = _config_error({"backends": [{"name": "b", "base_url": "http://h", "file_inputs": "keep"}]})
    assert (
        message
        == "backends[0].file_inputs: Input should be 'extract', 'passthrough' or 'reject' (got 'keep')"
    )
    assert _config_error({"files": {"max_pagez": 3}}).startswith("files.max_pagez: unknown key")


def test_pdfs_open_with_an_empty_password_are_read() -> None:
    pdf = make_pdf(["Open to all"])
    assert pdf_text(encrypt_pdf(pdf, ""), Bounds(5, 100, 5.0)) == ("Open to all", 1)
    with pytest.raises(FileProblem, match="encrypted"):
        pdf_text(encrypt_pdf(pdf, "pw"), Bounds(5, 100, 5.0))
    with pytest.raises(FileProblem, match=r"more text than files\.max_text_chars \(5 characters\)"):
        pdf_text(pdf, Bounds(5, 5, 5.0))
    with pytest.raises(FileProblem, match=r"has 1 pages, more than files\.max_pages \(0\)"):
        pdf_text(pdf, Bounds(0, 100, 5.0))
