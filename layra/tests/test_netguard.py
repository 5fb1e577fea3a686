"""layra.netguard through its public surface: the policy, and a guarded client against the fake LLM."""

import ipaddress

import pytest

from layra import netguard
from tests.fake_llm import FakeLLM


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"), ("2002:7f00:1::1", "loopback"),  # IPv4-mapped, 6to4
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.0.1", "private"), ("fd12::1", "private"),
    ("169.254.169.254", "metadata"), ("fd00:ec2::254", "metadata"), ("::ffff:169.254.169.254", "metadata"),
    ("100.100.100.200", "metadata"), ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"), ("0.0.0.0", "unspecified"), ("240.0.0.1", "reserved"),
    ("100.64.0.1", "non-public"),
    ("93.184.216.34", None), ("2606:4700:4700::1111", None),
])
def test_address_kinds(address, kind):
    assert netguard.address_kind(ipaddress.ip_address(address)) == kind


def test_a_pooled_connection_to_a_listed_url_is_not_reused_for_a_path_it_does_not_list():
    with FakeLLM(port=0) as fake:
        listed = f"http://localhost:{fake.port}/v1"  # a name: only where it connects is its address checked
        urls, networks = netguard.parse_allowlist([listed])
        policy = netguard.Policy(subject="The endpoint", urls=urls, networks=networks, redirects=False)
        with netguard.client(policy=lambda: policy, timeout=10) as client:
            assert client.get(f"{listed}/models").status_code == 200  # opens a kept-alive connection
            for path in ("/v2/chat/completions", "/chat/completions"):
                with pytest.raises(netguard.Refused, match="resolves to a loopback address"):
                    client.post(f"http://localhost:{fake.port}{path}", json={})
            with pytest.raises(netguard.Refused, match="resolves to a loopback address"):
                client.post(f"http://127.0.0.1:{fake.port}/v1/chat/completions", json={})  # not the listed name
            with pytest.raises(netguard.Refused, match="user name or password"):
                client.get(f"http://user:pw@127.0.0.1:{fake.port}/v1/models")
        assert fake.requests == []  # the one GET is not recorded; the refused POST never arrived


def test_without_a_listed_url_nothing_on_loopback_is_reached_and_nothing_is_sent():
    with FakeLLM(port=0) as fake:
        policy = netguard.Policy(subject="The endpoint")
        with netguard.client(policy=lambda: policy, timeout=10) as client:
            for url in (f"{fake.url}/chat/completions", f"http://localhost:{fake.port}/v1/chat/completions"):
                with pytest.raises(netguard.Refused, match="The endpoint resolves to a loopback address"):
                    client.post(url, json={"model": "m"})
        assert fake.count == 0
