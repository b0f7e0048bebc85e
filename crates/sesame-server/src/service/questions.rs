//! Security questions: a recovery aid, never a factor on their own (NIST SP 800-63B).
//!
//! A user sets two or three questions (from [`CATALOG`] or their own). Answers are normalised
//! — NFKC, lowercased, inner whitespace collapsed, trimmed — and hashed with Argon2id (random
//! salt, PHC string) on the hashing pool; the question text is sealed. Recovery accepts them
//! only together with a TOTP code.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::{Authenticated, RequestContext, Sesame};
use crate::error::{ApiError, InputError};
use crate::store::FactorRecord;
use crate::store::{FactorKind, Slot};
use sesame_api::account::{
    MAX_ANSWER_CHARS, MAX_QUESTIONS, MAX_QUESTION_CHARS, MIN_ANSWER_CHARS, MIN_QUESTIONS,
};

pub use sesame_api::account::QuestionAnswer;

const KIND: FactorKind = FactorKind::SecurityQuestion;
/// Questions offered to users (they may also write their own).
pub const CATALOG: &[&str] = &[
    "What was the name of your first pet?",
    "In which city did your parents meet?",
    "What was the first concert you attended?",
    "What was the make of your first car?",
    "What was the name of your favourite teacher?",
    "What is the name of the street you grew up on?",
    "What was your childhood nickname?",
    "What was the first book you loved?",
];

#[derive(Serialize, Deserialize)]
struct Stored {
    question: String,
    answer_hash: String,
}

/// NFKC, lowercase, whitespace collapsed.
pub(crate) fn normalize_answer(answer: &str) -> Zeroizing<String> {
    let folded: Zeroizing<String> =
        Zeroizing::new(answer.nfkc().collect::<String>().to_lowercase());
    Zeroizing::new(folded.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The questions trimmed and the answers normalised, or 400 `security_questions_invalid`.
fn validated(questions: &[QuestionAnswer]) -> Result<Vec<(String, Zeroizing<String>)>, ApiError> {
    let invalid = |m: String| ApiError::new(InputError::SecurityQuestionsInvalid, m);
    if !(MIN_QUESTIONS..=MAX_QUESTIONS).contains(&questions.len()) {
        return Err(invalid(format!(
            "Set {MIN_QUESTIONS} to {MAX_QUESTIONS} questions."
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let mut normalised = Vec::new();
    for q in questions {
        let text = q.question.trim();
        if text.is_empty()
            || text.chars().count() > MAX_QUESTION_CHARS
            || text.chars().any(char::is_control)
        {
            return Err(invalid(format!(
                "Questions are 1 to {MAX_QUESTION_CHARS} characters."
            )));
        }
        if !seen.insert(text.to_lowercase()) {
            return Err(invalid("Each question may appear once.".into()));
        }
        let answer = normalize_answer(&q.answer);
        let n = answer.chars().count();
        if !(MIN_ANSWER_CHARS..=MAX_ANSWER_CHARS).contains(&n) {
            return Err(invalid(format!(
                "Answers are {MIN_ANSWER_CHARS} to {MAX_ANSWER_CHARS} characters."
            )));
        }
        normalised.push((text.to_owned(), answer));
    }
    Ok(normalised)
}

impl Sesame {
    /// How many questions the user has set.
    pub async fn security_question_count(&self, user: uuid::Uuid) -> Result<usize, ApiError> {
        Ok(self.inner.store.factors(user, KIND).await?.len())
    }

    /// The user's questions, in order.
    pub async fn security_questions(&self, user: uuid::Uuid) -> Result<Vec<String>, ApiError> {
        let mut out = Vec::new();
        for f in self.inner.store.factors(user, KIND).await? {
            out.push(self.open_question(user, &f)?.question);
        }
        Ok(out)
    }

    fn open_question(&self, user: uuid::Uuid, f: &FactorRecord) -> Result<Stored, ApiError> {
        let text = self
            .inner
            .secrets
            .fields
            .open("security_question", user.as_bytes(), &f.value)
            .ok_or_else(|| ApiError::internal("security question does not decrypt"))?;
        serde_json::from_str(&text).map_err(ApiError::internal)
    }

    /// Replaces the caller's questions (fresh authentication needed).
    pub async fn set_security_questions(
        &self,
        who: &Authenticated,
        questions: Vec<QuestionAnswer>,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        self.require_fresh(who).await?;
        let normalised = validated(&questions)?;
        let rng = self.rng().clone();
        let hashes = self
            .inner
            .pool
            .run(move || -> Result<Vec<(String, String)>, String> {
                let argon = argon2::Argon2::default();
                normalised
                    .into_iter()
                    .map(|(q, a)| {
                        let salt = SaltString::generate(&mut rng.handle());
                        let h = argon
                            .hash_password(a.as_bytes(), &salt)
                            .map_err(|e| e.to_string())?;
                        Ok((q, h.to_string()))
                    })
                    .collect()
            })
            .await?
            .map_err(ApiError::internal)?;
        let records = hashes
            .into_iter()
            .enumerate()
            .map(|(i, (question, answer_hash))| {
                self.question_record(who.user_id, i, question, answer_hash)
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        self.inner
            .store
            .replace_factors(who.user_id, KIND, &records)
            .await?;
        self.audit(
            "protected.security_questions_set",
            Some(who.user_id),
            Some(format!("count={}", records.len())),
            ctx,
        )
        .await;
        Ok(())
    }

    /// The sealed factor record of question `slot`.
    fn question_record(
        &self,
        user: uuid::Uuid,
        slot: usize,
        question: String,
        answer_hash: String,
    ) -> Result<FactorRecord, ApiError> {
        let json = serde_json::to_string(&Stored {
            question,
            answer_hash,
        })
        .map_err(ApiError::internal)?;
        Ok(FactorRecord {
            user_id: user,
            kind: KIND,
            slot: Slot::Position(u32::try_from(slot).map_err(ApiError::internal)?),
            value: self
                .inner
                .secrets
                .fields
                .seal("security_question", user.as_bytes(), &json),
            counter: 0,
            created_at: self.now_i64(),
            used_at: None,
        })
    }

    /// How many of `answers` (in question order) are right. Runs Argon2 on the pool.
    pub(crate) async fn correct_answers(
        &self,
        user: uuid::Uuid,
        answers: &[String],
    ) -> Result<usize, ApiError> {
        let stored = self
            .inner
            .store
            .factors(user, KIND)
            .await?
            .iter()
            .map(|f| self.open_question(user, f).map(|s| s.answer_hash))
            .collect::<Result<Vec<_>, _>>()?;
        let answers: Vec<Zeroizing<String>> = answers.iter().map(|a| normalize_answer(a)).collect();
        Ok(self
            .inner
            .pool
            .run(move || {
                stored
                    .iter()
                    .zip(answers.iter())
                    .filter(|(hash, answer)| {
                        PasswordHash::new(hash)
                            .map(|h| {
                                argon2::Argon2::default()
                                    .verify_password(answer.as_bytes(), &h)
                                    .is_ok()
                            })
                            .unwrap_or(false)
                    })
                    .count()
            })
            .await?)
    }
}

#[cfg(test)]
mod tests;
