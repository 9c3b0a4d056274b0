"""The Store contract for asynchronous work, on memory, SQLite and PostgreSQL:
invoke configs, dead letters and idempotency keys."""

from __future__ import annotations

import threading

from tests.store.test_contract import action
from wisp.models import DeadLetter, IdempotencyClaim
from wisp.store.base import Store

CONFIG = {"maximumRetryAttempts": 2, "backoff": {"initial": 1.0}, "onFailure": None}


def letter(aid: str, ns: str = "guest", created: int = 1_000) -> DeadLetter:
    return DeadLetter(
        activation_id=aid,
        namespace=ns,
        name="pkg/fn",
        version="0.0.2",
        reason="RetriesExhausted",
        created=created,
        attempts=3,
        request={"params": {"name": "Ada", "ünï": ["✓"]}, "subject": ns},
        response={"status": "action developer error", "statusCode": 2, "result": {"error": "x"}},
    )


def test_invoke_config_put_get_replace(store: Store) -> None:
    assert store.get_invoke_config("guest", "pkg", "fn") is None
    store.put_invoke_config("guest", "pkg", "fn", CONFIG, 1)
    assert store.get_invoke_config("guest", "pkg", "fn") == CONFIG
    assert store.get_invoke_config("other", "pkg", "fn") is None
    store.put_invoke_config("guest", "pkg", "fn", {"maximumRetryAttempts": 5}, 2)
    assert store.get_invoke_config("guest", "pkg", "fn") == {"maximumRetryAttempts": 5}


def test_deleting_the_function_deletes_its_invoke_config(store: Store) -> None:
    store.put_action(action("fn", "default"))
    store.put_invoke_config("guest", "default", "fn", CONFIG, 1)
    store.put_invoke_config("guest", "default", "kept", CONFIG, 1)
    assert store.delete_action("guest", "default", "fn")
    assert store.get_invoke_config("guest", "default", "fn") is None
    assert store.get_invoke_config("guest", "default", "kept") == CONFIG


def test_dead_letters_list_get_delete_purge(store: Store) -> None:
    for n in range(5):
        store.put_dead_letter(letter(f"{n:032x}", created=1_000 + n))
    store.put_dead_letter(letter("f" * 32, ns="other"))
    listed = store.list_dead_letters("guest", 30, 0)
    assert [d.activation_id for d in listed] == [f"{n:032x}" for n in (4, 3, 2, 1, 0)]
    assert [d.activation_id for d in store.list_dead_letters("guest", 2, 1)] == [
        f"{3:032x}",
        f"{2:032x}",
    ]
    got = store.get_dead_letter("guest", f"{2:032x}")
    assert got == letter(f"{2:032x}", created=1_002)
    assert store.get_dead_letter("other", f"{2:032x}") is None  # another namespace's
    assert store.delete_dead_letter("other", f"{2:032x}") is False
    assert store.delete_dead_letter("guest", f"{2:032x}") is True
    assert store.get_dead_letter("guest", f"{2:032x}") is None
    assert store.purge_dead_letters("guest") == 4
    assert store.list_dead_letters("guest", 30, 0) == []
    assert len(store.list_dead_letters("other", 30, 0)) == 1


def test_put_dead_letter_replaces_by_id(store: Store) -> None:
    store.put_dead_letter(letter("a" * 32))
    again = letter("a" * 32)
    again.reason, again.attempts = "EventAgeExceeded", 2
    store.put_dead_letter(again)
    assert store.get_dead_letter("guest", "a" * 32) == again


def test_an_idempotency_key_is_claimed_once_until_it_expires(store: Store) -> None:
    first = IdempotencyClaim("a" * 32, "h1", 1_000)
    assert store.claim_idempotency_key("guest", "k", first, expired_before=0) == first
    second = IdempotencyClaim("b" * 32, "h2", 2_000)
    assert store.claim_idempotency_key("guest", "k", second, expired_before=500) == first
    # The same key in another namespace is another key.
    assert store.claim_idempotency_key("other", "k", second, expired_before=500) == second
    # Once the first claim is older than the window, a new claim replaces it.
    assert store.claim_idempotency_key("guest", "k", second, expired_before=1_500) == second
    assert store.purge_idempotency_keys(older_than=1_500) == 0
    assert store.purge_idempotency_keys(older_than=2_001) == 2
    third = IdempotencyClaim("c" * 32, "h3", 3_000)
    assert store.claim_idempotency_key("guest", "k", third, expired_before=0) == third


def test_a_claim_is_released_only_by_its_holder(store: Store) -> None:
    mine = IdempotencyClaim("a" * 32, "h", 1_000)
    store.claim_idempotency_key("guest", "k", mine, expired_before=0)
    assert store.release_idempotency_key("guest", "k", "b" * 32) is False
    assert store.release_idempotency_key("other", "k", "a" * 32) is False
    assert store.release_idempotency_key("guest", "k", "a" * 32) is True
    assert store.release_idempotency_key("guest", "k", "a" * 32) is False
    theirs = IdempotencyClaim("c" * 32, "h2", 2_000)
    assert store.claim_idempotency_key("guest", "k", theirs, expired_before=0) == theirs


def test_concurrent_claims_of_one_key_have_one_winner(store: Store) -> None:
    results: list[IdempotencyClaim] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def claim(n: int) -> None:
        start.wait()
        won = store.claim_idempotency_key(
            "guest", "race", IdempotencyClaim(f"{n:032x}", "h", 1_000 + n), expired_before=0
        )
        with lock:
            results.append(won)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16
    assert len({r.activation_id for r in results}) == 1
