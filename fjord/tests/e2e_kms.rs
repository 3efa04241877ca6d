//! The KMS-wrapped secret-sealing key (`--kms-key-id`, `src/sealing.rs`) against moto's KMS and
//! S3: instances starting together agree on one key stored once, a restart unwraps the same
//! key, a wrong KMS key fails with an error naming it and the object, and a second `fjord` on
//! another data dir unseals the secrets the first one sealed.

#![allow(clippy::unwrap_used)]

// The binary's module itself (the crate has no library target).
#[path = "../src/sealing.rs"]
mod sealing;

mod common;

use std::sync::Arc;

use common::{create_topic, free_addr, Fjord, REGION};
use fjord_metadata::conformance::moto::{self, Moto};
use fjord_tenancy::secrets::{SecretSealer, SecretString};
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use sealing::KeySource;

/// An S3 store on moto's bucket `bucket` under `prefix`, as `--object-store s3://…` opens it.
fn bucket(moto: &Moto, bucket: &str, prefix: &str) -> Arc<dyn ObjectStore> {
    moto.create_bucket(bucket);
    let s3 = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(REGION)
        .with_endpoint(&moto.endpoint)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .build()
        .unwrap();
    Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
}

/// Creates a symmetric KMS key through the KMS API; returns its ARN.
async fn create_key(kms: &aws_sdk_kms::Client) -> String {
    let created = kms.create_key().send().await.unwrap();
    created.key_metadata().unwrap().arn().unwrap().to_string()
}

/// Seals with `a`, unseals with `b`: the two hold the same key.
fn assert_same_key(a: &SecretSealer, b: &SecretSealer) {
    let secret = SecretString::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    let sealed = a.seal("AKIAEXAMPLE", &secret).unwrap();
    assert_eq!(b.unseal("AKIAEXAMPLE", &sealed).unwrap(), secret);
}

/// Full error text, context chain included (what `fjord` prints on exit).
fn chain(e: &anyhow::Error) -> String {
    format!("{e:#}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_share_one_stored_key() {
    let moto = moto::start_moto();
    let objects = bucket(&moto, "sealing", "cluster-a");
    let admin = sealing::kms_client(REGION, Some(&moto.endpoint)).await;
    let key = create_key(&admin).await;

    // Two instances, each with its own KMS client, racing on an empty store.
    let start = |objects: Arc<dyn ObjectStore>, key: String, endpoint: String| async move {
        let kms = sealing::kms_client(REGION, Some(&endpoint)).await;
        sealing::load_or_create_sealer(&kms, &key, objects.as_ref()).await
    };
    let (a, b) = tokio::join!(
        tokio::spawn(start(objects.clone(), key.clone(), moto.endpoint.clone())),
        tokio::spawn(start(objects.clone(), key.clone(), moto.endpoint.clone())),
    );
    let ((a, a_source), (b, b_source)) = (a.unwrap().unwrap(), b.unwrap().unwrap());
    assert_same_key(&a, &b);
    assert_same_key(&b, &a);
    let mut sources = [a_source, b_source];
    sources.sort_by_key(|s| format!("{s:?}"));
    assert!(
        sources == [KeySource::Created, KeySource::Loaded]
            || sources == [KeySource::Adopted, KeySource::Created],
        "exactly one instance creates the key: {sources:?}"
    );

    // Stored once, under the store's prefix, as JSON naming the wrapping key.
    let listed = moto.list_objects("sealing", "");
    assert_eq!(
        listed.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["cluster-a/_fjord/secret-sealing.key"]
    );
    let stored = objects
        .get(&ObjectPath::from(sealing::WRAPPED_KEY_OBJECT))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(json["kms_key_arn"], key.as_str());
    assert_eq!(json["format"], 1);

    // A restart (the public entry point, region from the ARN) unwraps the same key.
    let restarted =
        sealing::open_kms_sealer(&key, "eu-west-1", Some(&moto.endpoint), objects.as_ref())
            .await
            .unwrap();
    assert_same_key(&a, &restarted);
    assert_eq!(moto.list_objects("sealing", "").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creators_past_the_read_adopt_the_winner() {
    let moto = moto::start_moto();
    let objects = bucket(&moto, "race", "");
    let kms = sealing::kms_client(REGION, Some(&moto.endpoint)).await;
    let key = create_key(&kms).await;

    // Both skip the initial read, as two first starts that both saw no object do: both
    // generate a wrapped key, only one conditional create succeeds.
    let (a, b) = tokio::join!(
        sealing::create_or_adopt(&kms, &key, objects.as_ref()),
        sealing::create_or_adopt(&kms, &key, objects.as_ref()),
    );
    let ((a, a_source), (b, b_source)) = (a.unwrap(), b.unwrap());
    let mut sources = [a_source, b_source];
    sources.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(sources, [KeySource::Adopted, KeySource::Created]);
    assert_same_key(&a, &b);
    assert_eq!(moto.list_objects("race", "").len(), 1);

    let (loaded, source) = sealing::load_or_create_sealer(&kms, &key, objects.as_ref())
        .await
        .unwrap();
    assert_eq!(source, KeySource::Loaded);
    assert_same_key(&loaded, &a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_kms_key_fails_naming_the_key_and_the_object() {
    let moto = moto::start_moto();
    let objects = bucket(&moto, "wrong", "");
    let kms = sealing::kms_client(REGION, Some(&moto.endpoint)).await;
    let missing = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000";

    // First start with a key that does not exist: nothing is stored.
    let e = sealing::load_or_create_sealer(&kms, missing, objects.as_ref())
        .await
        .unwrap_err();
    let text = chain(&e);
    assert!(text.contains(missing), "{text}");
    assert!(text.contains(sealing::WRAPPED_KEY_OBJECT), "{text}");
    assert!(text.contains("NotFoundException"), "{text}");
    assert!(moto.list_objects("wrong", "").is_empty());

    // A key wrapped by one KMS key does not unwrap with another, or with a missing one.
    let right = create_key(&kms).await;
    let other = create_key(&kms).await;
    let (good, _) = sealing::load_or_create_sealer(&kms, &right, objects.as_ref())
        .await
        .unwrap();
    for wrong in [other.as_str(), missing] {
        let e = sealing::load_or_create_sealer(&kms, wrong, objects.as_ref())
            .await
            .unwrap_err();
        let text = chain(&e);
        assert!(text.contains("KMS Decrypt"), "{text}");
        assert!(text.contains(wrong), "{text}");
        assert!(text.contains(&right), "names the wrapping key: {text}");
        assert!(text.contains(sealing::WRAPPED_KEY_OBJECT), "{text}");
    }
    // The refusals left the stored key alone.
    let (again, source) = sealing::load_or_create_sealer(&kms, &right, objects.as_ref())
        .await
        .unwrap();
    assert_eq!(source, KeySource::Loaded);
    assert_same_key(&good, &again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_stored_key_is_an_error_not_a_new_key() {
    let moto = moto::start_moto();
    let objects = bucket(&moto, "corrupt", "");
    let kms = sealing::kms_client(REGION, Some(&moto.endpoint)).await;
    let key = create_key(&kms).await;
    let path = ObjectPath::from(sealing::WRAPPED_KEY_OBJECT);
    objects
        .put(&path, PutPayload::from_static(b"not a wrapped key"))
        .await
        .unwrap();
    let e = sealing::load_or_create_sealer(&kms, &key, objects.as_ref())
        .await
        .unwrap_err();
    let text = chain(&e);
    assert!(text.contains(sealing::WRAPPED_KEY_OBJECT), "{text}");
    assert!(text.contains("not a JSON wrapped-key object"), "{text}");
    // Still the operator's object: never silently replaced by a fresh key.
    let stored = objects.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(stored.as_ref(), b"not a wrapped key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_fjord_on_another_data_dir_unseals_what_the_first_sealed() {
    let moto = moto::start_moto();
    moto.create_bucket("fjord-data");
    let kms = sealing::kms_client(REGION, Some(&moto.endpoint)).await;
    let key = create_key(&kms).await;
    let shared = tempfile::tempdir().unwrap();
    let metadata = format!(
        "sqlite://{}",
        shared.path().join("metadata.sqlite").display()
    );
    let store = format!(
        "s3://fjord-data/cluster-a?region={REGION}&endpoint={}",
        moto.endpoint
    );
    let flags = [
        "--metadata",
        metadata.as_str(),
        "--object-store",
        store.as_str(),
        "--kms-key-id",
        key.as_str(),
        "--kms-endpoint",
        moto.endpoint.as_str(),
    ];

    // The first instance creates the dev tenant: its access-key secret is sealed in metadata.
    let first_dir = tempfile::tempdir().unwrap();
    let mut first = Fjord::start(first_dir.path(), &free_addr(), &flags);
    let sealed_by_first = first.credentials();
    assert!(first.terminate().success());
    assert!(
        !first_dir.path().join("secret.key").exists(),
        "with --kms-key-id no key file is written"
    );
    assert_eq!(
        moto.list_objects("fjord-data", "cluster-a/_fjord/").len(),
        1,
        "the wrapped key is in the object store"
    );

    // A second instance with its own data dir is handed the first one's credentials: it keeps
    // the tenant only if it unseals the stored secret and finds it equal (with a key of its own
    // it would create a new tenant and a new access key instead).
    let second_dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        first_dir.path().join("credentials"),
        second_dir.path().join("credentials"),
    )
    .unwrap();
    let second = Fjord::start(second_dir.path(), &free_addr(), &flags);
    assert_eq!(
        second.credentials().access_key_id,
        sealed_by_first.access_key_id
    );
    // And a client signing with that key authenticates against the second instance.
    create_topic(&second, "sealed-elsewhere", 1, &[]).await;
}
