//! opale-apim: an API management gateway for the OPALE tax data API.
//!
//! Partners call over mutual TLS with an OAuth2 client-credentials token;
//! every data call passes one ordered control chain (`chain/`) before any
//! data is returned. The modules mirror that flow:
//!
//! - `config` — the TOML configuration, parsed once into types;
//! - `pki` — the dev PKI and certificate issuance from CSRs;
//! - `tls` — server configs, client-certificate verdicts, per-connection facts;
//! - `reload` — SIGHUP / admin reload of certificates, CAs, CRLs, limits, log;
//! - `server` — accept loops, TLS handshakes, hyper connections, shutdown;
//! - `gateway` — the environment listeners (sandbox, production);
//! - `chain` — the controls, in order, and their denials;
//! - `admin` — the admin REST API and its CLI client;
//! - `datapass` — the DataPass webhook (HMAC-signed, on the admin listener);
//! - `registry`, `store` — partners, applications, certificates; storage;
//! - `trail` — the audit trail's append-only, checkpointed log (segments);
//! - `abuse` — abnormal-usage detection and security events;
//! - `notify` — expiry notices (e-mail and dashboard);
//! - `status` — service quality: availability, status page, incidents,
//!   maintenances.
#![forbid(unsafe_code)]

pub mod abuse;
pub mod admin;
pub mod app;
pub mod audit;
pub mod availability;
pub mod chain;
pub mod cluster;
pub mod config;
pub mod dashboard;
pub mod data;
pub mod datapass;
pub mod domain;
pub mod est;
pub mod gateway;
pub mod metrics;
pub mod notify;
pub mod oauth;
pub mod pki;
pub mod quota;
pub mod registry;
pub mod reload;
pub mod respond;
pub mod server;
pub mod status;
pub mod store;
pub mod tls;
pub mod trail;
