//! `aidsync-upload-bench`: what attachment uploads cost on a bad link.
//! Phones (demo receivers, on a fresh SQLite demo server in this process)
//! each record a receipt with photos attached, sync the records, then
//! upload the photos in chunks through a simulated link that loses
//! requests on the way (cut at a random point of the body: what a dropped
//! 2G connection does) and responses on the way back, resuming each time
//! from the offset the server reports.
//!
//! Prints one JSON line: bytes on the wire (request and response heads and
//! bodies, lost ones included) against bytes of content (the README's goal
//! is at most 1.10 at 20 % loss), the requests and losses, whether every
//! photo arrived intact, and the time the same traffic would take on a 2G
//! (EDGE) link. Progress on stderr.

use anyhow::{Context, bail};
use clap::Parser;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sha2::{Digest, Sha256};

use aidsync_server::demo;
use aidsync_shared::ids::{AttachmentId, LineId, ReceiptId, ShipmentId};
use aidsync_shared::model::{Condition, FileKind, FileRef, NewAttachment, NewReceipt};
use aidsync_tests::harness::{TestDb, TestServer};
use aidsync_tests::phone::{Api, Phone};

#[derive(Debug, Parser)]
#[command(about = "Bytes on the wire per byte of attachment, through a lossy 2G-like link")]
struct Args {
    #[arg(long, default_value_t = 20)]
    phones: usize,
    /// Photos each phone attaches.
    #[arg(long, default_value_t = 10)]
    photos: usize,
    /// Bytes of each photo.
    #[arg(long, default_value_t = 200_000)]
    photo_bytes: usize,
    /// Share of requests lost, half on the way out (cut at a random point
    /// of the body), half on the way back (the server has the chunk).
    #[arg(long, default_value_t = 0.2)]
    drop_rate: f64,
    /// Chunk size in KiB (the phone app sends 128).
    #[arg(long, default_value_t = 128)]
    chunk_kib: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// A 2G (EDGE) link as field teams have it: upload rate and round trip.
const EDGE_UP_BYTES_PER_S: f64 = 60_000.0 / 8.0;
const EDGE_DOWN_BYTES_PER_S: f64 = 200_000.0 / 8.0;
const EDGE_RTT_S: f64 = 0.6;

const RECEIVERS: [&str; 4] = ["anna", "petro", "iryna", "mykola"];

#[derive(Debug, Default, Clone, Copy)]
struct Wire {
    up: u64,
    down: u64,
    requests: u64,
    lost_requests: u64,
    lost_responses: u64,
    seconds_2g: f64,
}

impl Wire {
    fn add(&mut self, up: u64, down: u64) {
        self.up += up;
        self.down += down;
        self.requests += 1;
        self.seconds_2g +=
            EDGE_RTT_S + up as f64 / EDGE_UP_BYTES_PER_S + down as f64 / EDGE_DOWN_BYTES_PER_S;
    }
}

/// Bytes of a request's head as HTTP/1.1 sends it.
fn request_head(request: &reqwest::Request) -> u64 {
    let line = format!("{} {} HTTP/1.1\r\n", request.method(), request.url().path()).len();
    let host = format!("host: {}\r\n", request.url().authority()).len();
    let headers: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    let length = request
        .body()
        .and_then(|b| b.as_bytes())
        .map_or(0, |b| format!("content-length: {}\r\n", b.len()).len());
    (line + host + headers + length + 2) as u64
}

fn response_head(response: &reqwest::Response) -> u64 {
    let headers: usize = response
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    ("HTTP/1.1 200 OK\r\n".len() + headers + 2) as u64
}

/// One request through the lossy link: `None` if it or its answer was lost.
async fn exchange(
    http: &reqwest::Client,
    request: reqwest::Request,
    rng: &mut rand::rngs::StdRng,
    drop_rate: f64,
    wire: &mut Wire,
) -> anyhow::Result<Option<(reqwest::StatusCode, serde_json::Value)>> {
    let head = request_head(&request);
    let body = request
        .body()
        .and_then(|b| b.as_bytes())
        .map_or(0, <[u8]>::len) as u64;
    let fate: f64 = rng.random();
    if fate < drop_rate / 2.0 {
        // Cut on the way: the head and part of the body went out.
        let part = (body as f64 * rng.random::<f64>()) as u64;
        wire.add(head + part, 0);
        wire.lost_requests += 1;
        return Ok(None);
    }
    let response = http.execute(request).await?;
    let status = response.status();
    let response_head = response_head(&response);
    let bytes = response.bytes().await?;
    wire.add(head + body, response_head + bytes.len() as u64);
    if fate < drop_rate {
        wire.lost_responses += 1;
        return Ok(None);
    }
    Ok(Some((status, serde_json::from_slice(&bytes)?)))
}

/// Uploads one file as the phone app does: ask where the server stands,
/// send chunks from there, ask again after any loss.
async fn upload(
    api: &Api,
    token: &str,
    bytes: &[u8],
    chunk: usize,
    rng: &mut rand::rngs::StdRng,
    drop_rate: f64,
    wire: &mut Wire,
) -> anyhow::Result<()> {
    let sha = aidsync_shared::ids::to_hex(&Sha256::digest(bytes));
    let url = format!("{}/api/v1/uploads/{sha}", api.base);
    for _ in 0..10_000 {
        let status = api.http.get(&url).bearer_auth(token).build()?;
        let Some((code, state)) = exchange(&api.http, status, rng, drop_rate, wire).await? else {
            continue;
        };
        if code != reqwest::StatusCode::OK {
            bail!("upload status: {code} {state}");
        }
        if state["complete"] == true {
            return Ok(());
        }
        let mut offset = state["offset"].as_u64().context("offset")? as usize;
        loop {
            let end = (offset + chunk).min(bytes.len());
            let patch = api
                .http
                .patch(&url)
                .bearer_auth(token)
                .header("content-type", "application/offset+octet-stream")
                .header("upload-offset", offset.to_string())
                .header("upload-length", bytes.len().to_string())
                .body(bytes[offset..end].to_vec())
                .build()?;
            let Some((code, state)) = exchange(&api.http, patch, rng, drop_rate, wire).await?
            else {
                break;
            };
            match code {
                reqwest::StatusCode::OK if state["complete"] == true => return Ok(()),
                reqwest::StatusCode::OK => {
                    offset = state["offset"].as_u64().context("offset")? as usize;
                }
                reqwest::StatusCode::CONFLICT => break,
                other => bail!("upload refused: {other} {state}"),
            }
        }
    }
    bail!("upload of {sha} did not finish")
}

fn photo(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((4..len).map(|_| rng.random::<u8>()));
    bytes
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(&args).await {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("aidsync-upload-bench: {e:#}");
            std::process::exit(2);
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<serde_json::Value> {
    let db = TestDb::sqlite()?;
    let server = TestServer::start(db.url()).await?;
    demo::seed(server.db(), 90 * 24 * 3_600_000).await?;
    let api = Api::new(&server.base);

    // Records first: every phone records a receipt with its photos and syncs.
    let mut phones = Vec::new();
    for n in 0..args.phones {
        let user = RECEIVERS[n % RECEIVERS.len()];
        let mut phone = Phone::login(&api, user, &demo::password(user)).await?;
        phone.sync_settled().await?;
        let shipment: ShipmentId = phone
            .engine
            .shipment_ids()
            .next()
            .cloned()
            .context("a shipment")?;
        let line: LineId = phone
            .engine
            .shipment(&shipment)?
            .lines
            .keys()
            .next()
            .cloned()
            .context("a line")?;
        let receipt = phone
            .record(
                &shipment,
                NewReceipt {
                    id: ReceiptId::parse(format!("upload-bench-{n}"))?,
                    line_id: line,
                    quantity: 1,
                    condition: Condition::Damaged,
                    serials: Vec::new(),
                    note: String::new(),
                    voids: None,
                    stage: None,
                    reason: None,
                    delivery_id: None,
                },
            )
            .await?;
        let mut files = Vec::new();
        for k in 0..args.photos {
            let bytes = photo(
                args.seed * 1_000_003 + (n * args.photos + k) as u64,
                args.photo_bytes,
            );
            let sha256 = aidsync_shared::ids::to_hex(&Sha256::digest(&bytes));
            phone
                .attach(
                    &shipment,
                    NewAttachment {
                        id: AttachmentId::parse(format!("upload-bench-{n}-{k}"))?,
                        file_kind: FileKind::Photo,
                        receipt_id: Some(receipt.id.clone()),
                        file: FileRef {
                            sha256,
                            media_type: "image/jpeg".into(),
                            size: bytes.len() as u64,
                            width: Some(1600),
                            height: Some(1200),
                        },
                        signer: None,
                        note: format!("photo {k}"),
                        delivery_id: None,
                    },
                )
                .await?;
            files.push(bytes);
        }
        phone.sync_settled().await?;
        phones.push((phone, files));
    }
    eprintln!(
        "aidsync-upload-bench: {} phones synced their records; uploading",
        phones.len()
    );

    // Then the bytes, every phone at once, each through its own bad link.
    let chunk = args.chunk_kib * 1024;
    let mut tasks = Vec::new();
    for (n, (phone, files)) in phones.iter().enumerate() {
        let api = api.clone();
        let token = phone.token().to_owned();
        let files = files.clone();
        let (drop_rate, seed) = (
            args.drop_rate,
            args.seed.wrapping_mul(7_919).wrapping_add(n as u64),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut wire = Wire::default();
            for bytes in &files {
                upload(&api, &token, bytes, chunk, &mut rng, drop_rate, &mut wire).await?;
            }
            anyhow::Ok(wire)
        }));
    }
    let mut total = Wire::default();
    let mut slowest_2g: f64 = 0.0;
    for task in tasks {
        let wire = task.await??;
        total.up += wire.up;
        total.down += wire.down;
        total.requests += wire.requests;
        total.lost_requests += wire.lost_requests;
        total.lost_responses += wire.lost_responses;
        slowest_2g = slowest_2g.max(wire.seconds_2g);
    }

    // Every photo on the server, intact.
    let mut arrived = 0;
    for (phone, files) in &phones {
        for bytes in files {
            let sha = aidsync_shared::ids::to_hex(&Sha256::digest(bytes));
            let response = api
                .http
                .get(format!("{}/api/v1/blobs/{sha}", api.base))
                .bearer_auth(phone.token())
                .send()
                .await?;
            if response.status().is_success()
                && response.bytes().await?.as_ref() == bytes.as_slice()
            {
                arrived += 1;
            }
        }
    }
    server.stop().await?;
    let photos = args.phones * args.photos;
    let content = (photos * args.photo_bytes) as u64;
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let result = json!({
        "phones": args.phones,
        "photos": photos,
        "content_bytes": content,
        "wire_bytes_up": total.up,
        "wire_bytes_down": total.down,
        "wire_per_content": round3((total.up + total.down) as f64 / content as f64),
        "requests": total.requests,
        "lost_requests": total.lost_requests,
        "lost_responses": total.lost_responses,
        "drop_rate": args.drop_rate,
        "chunk_kib": args.chunk_kib,
        "seconds_on_2g_slowest_phone": round3(slowest_2g),
        "photos_arrived": arrived,
        "all_arrived": arrived == photos,
    });
    if arrived != photos {
        eprintln!(
            "aidsync-upload-bench: {} of {photos} photos arrived",
            arrived
        );
        println!("{result}");
        std::process::exit(1);
    }
    Ok(result)
}
