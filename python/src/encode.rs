//! `encode`: records → CLKs through the CLI's own pipeline ([`CsvEncoding`]), so the bytes
//! equal those of `blindlink encode` on the same rows, schema and secret, and a bad row is
//! reported with the same text (`<input>:<line>: field '<column>': <reason>`).

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use blindlink_cli::commands::encode::{CsvEncoding, Progress};
use blindlink_cli::commands::keygen::{ALLOW_WEAK_KEY_VAR, read_key_file};
use blindlink_encoding::format::{BINARY_HEADER_LEN, ClkFormat, ClkWriter};
use blindlink_encoding::{ClkEncoder, LinkageSecret, MIN_SECRET_BYTES, Schema, SchemaDocument};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyFloat, PyList, PyString};
use zeroize::Zeroizing;

use crate::errors::{Kind, OrRaise, to_py};

/// Where the linkage secret comes from.
pub(crate) enum SecretSource {
    /// The secret's bytes themselves (Python `bytes`, or `str` as UTF-8).
    Bytes(Zeroizing<Vec<u8>>),
    /// A key file, read as `blindlink encode --secret-file` reads it.
    File(PathBuf),
}

impl SecretSource {
    /// `bytes`/`bytearray`/`str` are the secret, an `os.PathLike` a key file.
    pub(crate) fn extract(value: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(bytes) = value.cast::<PyBytes>() {
            return Ok(Self::Bytes(Zeroizing::new(bytes.as_bytes().to_vec())));
        }
        if let Ok(bytes) = value.cast::<PyByteArray>() {
            return Ok(Self::Bytes(Zeroizing::new(bytes.to_vec())));
        }
        if value.cast::<PyString>().is_ok() {
            let text = Zeroizing::new(value.extract::<String>()?);
            return Ok(Self::Bytes(Zeroizing::new(text.as_bytes().to_vec())));
        }
        match value.extract::<PathBuf>() {
            Ok(path) => Ok(Self::File(path)),
            Err(_) => Err(pyo3::exceptions::PyTypeError::new_err(
                "secret must be bytes, str or a path to a key file",
            )),
        }
    }

    /// The secret's bytes, with the key file's length rule.
    pub(crate) fn read(&self) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        match self {
            Self::File(path) => read_key_file(path),
            Self::Bytes(bytes) => {
                let allow_weak = std::env::var_os(ALLOW_WEAK_KEY_VAR).is_some_and(|v| v == "1");
                if bytes.is_empty() {
                    bail!("the secret is empty");
                }
                if bytes.len() < MIN_SECRET_BYTES && !allow_weak {
                    bail!(
                        "the secret holds {} bytes; a linkage key needs at least {MIN_SECRET_BYTES} \
                         (make one with `blindlink keygen`, or set {ALLOW_WEAK_KEY_VAR}=1 to use a \
                         weak key for tests)",
                        bytes.len()
                    );
                }
                Ok(bytes.clone())
            }
        }
    }

    fn name(&self) -> String {
        match self {
            Self::File(path) => format!("secret file {}", path.display()),
            Self::Bytes(_) => "secret".to_owned(),
        }
    }
}

/// The encoder of a schema and secret, as `blindlink encode` builds it, and the schema's
/// warnings.
fn encoder(
    schema_text: &str,
    schema_name: &str,
    secret: &SecretSource,
) -> anyhow::Result<(SchemaDocument, ClkEncoder, Vec<String>)> {
    let document = SchemaDocument::parse(schema_text)
        .with_context(|| format!("invalid schema {schema_name}"))?;
    let warnings = document
        .schema
        .warnings()
        .iter()
        .map(|w| format!("{schema_name}: {w}"))
        .collect();
    let bytes = secret.read()?;
    let linkage_secret =
        LinkageSecret::from_bytes(bytes.to_vec()).with_context(|| secret.name())?;
    let encoder = ClkEncoder::new(&document, &linkage_secret)?;
    Ok((document, encoder, warnings))
}

/// The encoded records: the CLKs back to back, their count and the bytes of each.
type Encoded = (Vec<u8>, usize, usize);

fn run(
    input: impl Read + Send,
    input_name: &str,
    document: &SchemaDocument,
    encoder: &ClkEncoder,
    threads: Option<usize>,
    era_dates_lenient: bool,
) -> anyhow::Result<Encoded> {
    let threads = match threads {
        Some(0) => bail!("threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let output = ClkWriter::new(
        Cursor::new(Vec::new()),
        ClkFormat::Binary,
        encoder.filter_bits(),
        Some(encoder.schema_digest()),
    )
    .context("cannot start the output")?;
    let job = CsvEncoding {
        encoder,
        schema: &document.schema,
        input_name,
        output_name: "the output array",
        threads,
    };
    let era_columns = match (era_dates_lenient, &document.schema) {
        (true, Schema::Native(native)) => native
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| blindlink_party::has_date_step(f.pipeline()))
            .map(|(i, _)| i)
            .collect(),
        _ => Vec::new(),
    };
    let progress = Progress::new(0, true);
    let (output, summary) =
        job.run_reading_era_dates(input, output, None, &progress, &era_columns)?;
    if summary.encoded == 0 && summary.rejected == 0 {
        bail!("{input_name}: no records after the header row");
    }
    let mut bytes = output
        .finish()
        .context("cannot finish the output")?
        .into_inner();
    bytes.drain(..BINARY_HEADER_LEN);
    let count = usize::try_from(summary.encoded).context("too many records")?;
    Ok((bytes, count, encoder.bytes_per_clk()))
}

/// What the encode functions return to Python: the CLK bytes (a `bytearray` numpy reshapes
/// without copying), the record count, the bytes per CLK and the schema's warnings.
type EncodeResult<'py> = (Bound<'py, PyByteArray>, usize, usize, Vec<String>);

fn finish(
    py: Python<'_>,
    result: anyhow::Result<Encoded>,
    warnings: Vec<String>,
) -> PyResult<EncodeResult<'_>> {
    let (bytes, count, width) = result.map_err(|e| to_py(Kind::Input, &e))?;
    Ok((PyByteArray::new(py, &bytes), count, width, warnings))
}

/// Encodes the CSV file at `path` (with a header row) as `blindlink encode` does.
#[pyfunction]
#[pyo3(signature = (path, schema_text, schema_name, secret, threads=None, era_dates_lenient=false))]
pub(crate) fn encode_file<'py>(
    py: Python<'py>,
    path: PathBuf,
    schema_text: &str,
    schema_name: &str,
    secret: &Bound<'py, PyAny>,
    threads: Option<usize>,
    era_dates_lenient: bool,
) -> PyResult<EncodeResult<'py>> {
    let secret = SecretSource::extract(secret)?;
    let (document, encoder, warnings) =
        encoder(schema_text, schema_name, &secret).or_raise(Kind::Config)?;
    let result = py.detach(|| {
        let input_name = path.display().to_string();
        let file = std::fs::File::open(Path::new(&path))
            .with_context(|| format!("cannot read {input_name}"))?;
        run(
            file,
            &input_name,
            &document,
            &encoder,
            threads,
            era_dates_lenient,
        )
    });
    finish(py, result, warnings)
}

/// A cell as the CSV text of a value: `str` as is, `None` and NaN (float or pandas' NA) empty,
/// anything else through `str()`.
fn cell(value: &Bound<'_, PyAny>, out: &mut String) -> PyResult<()> {
    out.clear();
    if let Ok(text) = value.cast::<PyString>() {
        out.push_str(&text.to_cow()?);
    } else if value.is_none() {
    } else if let Ok(x) = value.cast::<PyFloat>() {
        let v = x.value();
        if !v.is_nan() {
            out.push_str(&value.str()?.to_cow()?);
        }
    } else if value.get_type().name()?.to_cow()? == "NAType" {
    } else {
        out.push_str(&value.str()?.to_cow()?);
    }
    Ok(())
}

/// Encodes a table given by columns (`columns[j]` is the column named `header[j]`, lists of
/// equal length), as if its rows were the data rows of a CSV file named `input_name` with
/// that header: line 2 is the first row. Cells are converted by [`cell`].
#[pyfunction]
#[pyo3(signature = (header, columns, schema_text, schema_name, secret, input_name="rows", threads=None, era_dates_lenient=false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode_columns<'py>(
    py: Python<'py>,
    header: Vec<String>,
    columns: Vec<Bound<'py, PyList>>,
    schema_text: &str,
    schema_name: &str,
    secret: &Bound<'py, PyAny>,
    input_name: &str,
    threads: Option<usize>,
    era_dates_lenient: bool,
) -> PyResult<EncodeResult<'py>> {
    let secret = SecretSource::extract(secret)?;
    let (document, encoder, warnings) =
        encoder(schema_text, schema_name, &secret).or_raise(Kind::Config)?;
    let rows = columns.first().map_or(0, |c| c.len());
    if header.len() != columns.len() || columns.iter().any(|c| c.len() != rows) {
        return Err(crate::errors::InputError::new_err(
            "the columns differ in length or do not match the header",
        ));
    }
    // The CSV text is built with the interpreter attached (the cells are Python objects);
    // the encoding itself runs detached.
    let mut csv = csv::WriterBuilder::new().from_writer(Vec::with_capacity(rows * 64));
    csv.write_record(&header)
        .context("cannot buffer the rows")
        .or_raise(Kind::Input)?;
    let mut cells = vec![String::new(); columns.len()];
    for i in 0..rows {
        for (column, text) in columns.iter().zip(cells.iter_mut()) {
            cell(&column.get_item(i)?, text)?;
        }
        csv.write_record(&cells)
            .context("cannot buffer the rows")
            .or_raise(Kind::Input)?;
    }
    let text = csv
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot buffer the rows: {}", e.error()))
        .or_raise(Kind::Input)?;
    let result = py.detach(|| {
        run(
            Cursor::new(text),
            input_name,
            &document,
            &encoder,
            threads,
            era_dates_lenient,
        )
    });
    finish(py, result, warnings)
}
