//! Unit tests of [`super`]: signing, verification order, the replay rules.

use super::*;

const SECRET: &[u8] = b"s3cret";
const NOW: i64 = 1_700_000_000;

fn request<'a>(ts: &'a str, sig: &'a str, body: &'a [u8]) -> WebhookRequest<'a> {
    WebhookRequest { timestamp: Some(ts), signature: Some(sig), delivery: Some("d-1"), body }
}

fn signed(body: &[u8]) -> String {
    sign(SECRET, "1700000000", "d-1", body)
}

#[test]
fn accepts_a_signed_request_and_reads_its_body() {
    let body = br#"{"params":{"day":"2026-11-23"},"input":"s3://inbox/orders.csv"}"#;
    let sig = signed(body);
    let d = verify(SECRET, &request("1700000000", &sig, body), NOW + 10, DEFAULT_MAX_BODY).unwrap();
    assert_eq!(d.id, "d-1");
    assert_eq!(d.params["day"], "2026-11-23");
    assert_eq!(d.input.unwrap().to_string(), "s3://inbox/orders.csv");
    let t = verify(SECRET, &request("1700000000", &sig, body), NOW, DEFAULT_MAX_BODY)
        .unwrap()
        .into_trigger("orders");
    assert_eq!(t.idempotency_key, "webhook:d-1");
    assert_eq!(t.source, TriggerSource::Webhook);
}

#[test]
fn the_signed_string_is_timestamp_dot_delivery_dot_body() {
    // The documented recipe, computed independently of `sign`.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET).unwrap();
    mac.update(b"1700000000.d-1.{}");
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(sign(SECRET, "1700000000", "d-1", b"{}"), want);
}

#[test]
fn an_empty_body_is_a_run_without_params() {
    let sig = signed(b"");
    let d = verify(SECRET, &request("1700000000", &sig, b""), NOW, DEFAULT_MAX_BODY).unwrap();
    assert!(d.params.is_empty() && d.input.is_none());
}

/// Issue 10, finding 2: one captured request resent with 20 new delivery ids started 20 runs.
#[test]
fn a_replay_under_another_delivery_id_no_longer_verifies() {
    let body = br#"{"params":{"day":"tue"}}"#;
    let sig = signed(body);
    for i in 0..20 {
        let id = format!("replayed-{i}");
        let mut r = request("1700000000", &sig, body);
        r.delivery = Some(&id);
        let e = verify(SECRET, &r, NOW + 5, DEFAULT_MAX_BODY).unwrap_err();
        assert_eq!((e.status(), e), (401, WebhookError::BadSignature), "{id}");
    }
}

#[test]
fn an_identical_replay_carries_the_same_delivery_id_so_the_same_idempotency_key() {
    let sig = signed(b"");
    let first = verify(SECRET, &request("1700000000", &sig, b""), NOW, 1024).unwrap();
    let again = verify(SECRET, &request(" 1700000000 ", &sig, b""), NOW + 299, 1024).unwrap();
    assert_eq!(first.into_trigger("p").idempotency_key, again.into_trigger("p").idempotency_key);
}

#[test]
fn the_delivery_id_cannot_absorb_part_of_the_body() {
    // With '.' allowed in ids, "d.{...}" + "x" and "d" + "{...}.x" would sign the same string.
    let sig = sign(SECRET, "1700000000", "d", b"a.b");
    let mut r = request("1700000000", &sig, b"b");
    r.delivery = Some("d.a");
    let e = verify(SECRET, &r, NOW, 1024).unwrap_err();
    assert_eq!((e.status(), e), (400, WebhookError::BadDelivery("d.a".into())));
}

#[test]
fn the_delivery_header_is_required_and_checked_before_the_signature() {
    let sig = signed(b"{}");
    let mut r = request("1700000000", &sig, b"{}");
    r.delivery = None;
    let e = verify(SECRET, &r, NOW, 1024).unwrap_err();
    assert_eq!((e.status(), &e), (400, &WebhookError::MissingDelivery));
    assert!(e.to_string().contains(DELIVERY_HEADER), "{e}");
    let long = "x".repeat(MAX_DELIVERY_ID + 1);
    for bad in ["", "has space", "a.b", "a\tb", "é", long.as_str()] {
        let mut r = request("1700000000", &sig, b"{}");
        r.delivery = Some(bad);
        let e = verify(SECRET, &r, NOW, 1024).unwrap_err();
        assert_eq!(e.status(), 400, "{bad:?}: {e}");
        assert!(e.to_string().contains(DELIVERY_HEADER) && e.to_string().contains("'.'"), "{e}");
    }
}

#[test]
fn rejects_wrong_secret_tampered_body_and_missing_headers() {
    let sig = sign(b"other", "1700000000", "d-1", b"{}");
    assert_eq!(
        verify(SECRET, &request("1700000000", &sig, b"{}"), NOW, 1024),
        Err(WebhookError::BadSignature)
    );
    let sig = signed(b"{}");
    assert_eq!(
        verify(SECRET, &request("1700000000", &sig, b"{ }"), NOW, 1024),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        verify(SECRET, &request("1700000001", &sig, b"{}"), NOW, 1024),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        verify(SECRET, &request("1700000000", "sha256=zz", b"{}"), NOW, 1024),
        Err(WebhookError::BadSignature)
    );
    // The old signing string ("{timestamp}.{body}") no longer verifies.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET).unwrap();
    mac.update(b"1700000000.{}");
    let old = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        verify(SECRET, &request("1700000000", &old, b"{}"), NOW, 1024),
        Err(WebhookError::BadSignature)
    );
    let mut r = request("1700000000", &sig, b"{}");
    r.signature = None;
    let e = verify(SECRET, &r, NOW, 1024).unwrap_err();
    assert_eq!((e.status(), e.reason(), e), (401, "unsigned", WebhookError::MissingHeader(SIGNATURE_HEADER)));
    let mut r = request("1700000000", &sig, b"{}");
    r.timestamp = None;
    assert_eq!(verify(SECRET, &r, NOW, 1024), Err(WebhookError::MissingHeader(TIMESTAMP_HEADER)));
}

#[test]
fn rejects_stale_and_future_timestamps_outside_five_minutes() {
    let sig = signed(b"");
    assert!(verify(SECRET, &request("1700000000", &sig, b""), NOW + 300, 1024).is_ok());
    let e = verify(SECRET, &request("1700000000", &sig, b""), NOW + 301, 1024).unwrap_err();
    assert_eq!((e.status(), e), (401, WebhookError::Stale { skew_secs: 301 }));
    assert_eq!(
        verify(SECRET, &request("1700000000", &sig, b""), NOW - 301, 1024),
        Err(WebhookError::Stale { skew_secs: -301 })
    );
    let sig = sign(SECRET, "soon", "d-1", b"");
    assert_eq!(
        verify(SECRET, &request("soon", &sig, b""), NOW, 1024),
        Err(WebhookError::BadTimestamp("soon".into()))
    );
}

#[test]
fn rejects_oversized_bodies_before_anything_else() {
    let body = vec![b' '; 1025];
    let e = verify(
        SECRET,
        &WebhookRequest { timestamp: None, signature: None, delivery: None, body: &body },
        NOW,
        1024,
    )
    .unwrap_err();
    assert_eq!((e.status(), e), (413, WebhookError::TooLarge { size: 1025, limit: 1024 }));
}

#[test]
fn rejects_a_signed_but_malformed_body_with_400() {
    let sig = signed(b"{\"param\":1}");
    let e = verify(SECRET, &request("1700000000", &sig, b"{\"param\":1}"), NOW, 1024).unwrap_err();
    assert_eq!((e.status(), e.reason()), (400, "bad-body"));
    assert!(e.to_string().contains("unknown field"), "{e}");
}
