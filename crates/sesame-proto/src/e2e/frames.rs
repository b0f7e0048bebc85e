//! The relay's JSON frames, shared by the client and the server.

use serde::{Deserialize, Serialize};

use super::SealedMessage;

/// The most message ids one `ack` frame (or one TCP `ACK` line) may carry. A larger batch is
/// refused whole with `too_many_acks`, and nothing of it is acknowledged.
pub const MAX_ACK_IDS: usize = 512;

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
    /// `{"type":"ack","id"}` or `{"type":"ack","ids":[…]}`: these messages were received;
    /// delete them. `id` is the original single-message form; `ids` carries up to
    /// [`MAX_ACK_IDS`] ids in one frame (both may be present: `id` counts as one more).
    /// Build one with [`ClientFrame::ack`] or [`ClientFrame::ack_many`].
    Ack {
        /// The id of one delivered message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The ids of several delivered messages.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ids: Vec<String>,
    },
}

impl ClientFrame {
    /// An `ack` of one message: `{"type":"ack","id"}` (understood by every server version).
    pub fn ack(id: impl Into<String>) -> ClientFrame {
        ClientFrame::Ack {
            id: Some(id.into()),
            ids: Vec::new(),
        }
    }

    /// An `ack` of many messages at once: `{"type":"ack","ids":[…]}`. The server refuses more
    /// than [`MAX_ACK_IDS`] ids in one frame; split longer lists.
    pub fn ack_many(ids: Vec<String>) -> ClientFrame {
        ClientFrame::Ack { id: None, ids }
    }
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
