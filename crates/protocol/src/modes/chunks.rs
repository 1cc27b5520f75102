//! Splitting logical messages into chunks and reassembling them.
