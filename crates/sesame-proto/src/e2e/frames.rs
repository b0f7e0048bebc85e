//! The relay's JSON frames, shared by the client and the server.

use serde::{Deserialize, Serialize};

use super::SealedMessage;

/// A JSON text frame from a client to the relay, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// `{"type":"send","to","id","sent_at","ciphertext","signature"}`: store and deliver.
    Send {
        /// The recipient's username.
        to: String,
        /// The sealed message (its fields appear at the top level of the frame).
        #[serde(flatten)]
        message: SealedMessage,
    },
    /// `{"type":"ack","id"}`: the message `id` was received; delete it.
    Ack {
        /// The id of a delivered message.
        id: String,
    },
}

/// The error object of [`ServerFrame::Error`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ErrorDetail))]
pub struct FrameError {
    /// A stable, machine-readable code: `unknown_recipient`, `message_too_large`,
    /// `mailbox_full`, `rate_limited`, `invalid_message`, … (the error table of the server's
    /// contract; docs/api.md §4).
    pub code: String,
    /// For people (may change; never branch on it).
    pub message: String,
    /// Seconds after which retrying makes sense, when the transport carries no header for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// A JSON text frame from the relay to a client, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// `{"type":"accepted","id"}`: the message `id` is durably stored.
    Accepted {
        /// The id the client sent.
        id: String,
    },
    /// `{"type":"error","id","error":{"code","message"}}`: a send or ack failed (`id` absent
    /// when the frame itself could not be read).
    Error {
        /// The id of the message concerned, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// What went wrong.
        error: FrameError,
    },
    /// `{"type":"message","id","from","to","sent_at","ciphertext","signature"}`: a delivery;
    /// the backlog first, oldest first, then live messages. `from` is set by the server.
    Message {
        /// The sender (the authenticated account that sent it).
        from: String,
        /// The recipient (this client's user).
        to: String,
        /// The sealed message (its fields appear at the top level of the frame).
        #[serde(flatten)]
        message: SealedMessage,
    },
}
