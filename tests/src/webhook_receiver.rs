//! A webhook subscriber on 127.0.0.1 for the tests: a real HTTP server that checks every request's
//! `X-Railyard-Signature-256` against the secret, records the events, and can go down or stop answering.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// One request received.
#[derive(Debug, Clone)]
pub struct Hook {
    /// `X-Railyard-Event`.
    pub event: String,
    /// `X-Railyard-Delivery`.
    pub delivery: String,
    pub body: serde_json::Value,
    /// The signature matched the body and the secret.
    pub valid: bool,
}

/// How the receiver treats the next connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers 200.
    Up = 0,
    /// Closes every connection before reading it (the subscriber is down).
    Down = 1,
    /// Reads the request and never answers.
    Hang = 2,
}

pub struct WebhookReceiver {
    pub url: String,
    mode: Arc<AtomicU8>,
    got: Arc<Mutex<Vec<Hook>>>,
}

/// `sha256=<hex>` of `body` with `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

impl WebhookReceiver {
    /// Listens on a free port of 127.0.0.1; `url` is `http://127.0.0.1:<port>/hook`.
    pub fn start(secret: &str, mode: Mode) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let mode_flag = Arc::new(AtomicU8::new(mode as u8));
        let got = Arc::new(Mutex::new(Vec::new()));
        let (m, keep, secret) = (mode_flag.clone(), got.clone(), secret.to_owned());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let mode = m.load(Ordering::SeqCst);
                if mode == Mode::Down as u8 {
                    drop(stream);
                    continue;
                }
                let (keep, secret) = (keep.clone(), secret.clone());
                std::thread::spawn(move || serve(stream, &secret, &keep, mode == Mode::Hang as u8));
            }
        });
        Self { url, mode: mode_flag, got }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Everything received so far, in arrival order.
    pub fn hooks(&self) -> Vec<Hook> {
        self.got.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn serve(stream: std::net::TcpStream, secret: &str, keep: &Mutex<Vec<Hook>>, hang: bool) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let (mut length, mut signature, mut event, mut delivery) = (0, String::new(), String::new(), String::new());
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        let Some((name, value)) = h.split_once(':') else { continue };
        let value = value.trim().to_owned();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().unwrap_or(0),
            "x-railyard-signature-256" => signature = value,
            "x-railyard-event" => event = value,
            "x-railyard-delivery" => delivery = value,
            _ => {}
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    if hang {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        return;
    }
    let valid = signature == sign(secret, &body);
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    keep.lock().unwrap_or_else(|p| p.into_inner()).push(Hook { event, delivery, body, valid });
    let mut stream = stream;
    let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
}
