//! Writers (and a few readers) for the real file formats in the corpus
//! (PNG, ZIP/OOXML, PDF, DICOM, gzip, base64). Public so that tests of other
//! crates can build or check valid files.
//!
//! Everything here is pure byte manipulation: no I/O. The writers produce
//! files that real tools accept (correct CRCs, offsets and lengths).

use flate2::write::{DeflateEncoder, ZlibEncoder};
use flate2::{Compression, Crc};
use std::io::{Read, Write};

/// CRC-32 (IEEE 802.3), as used by PNG, ZIP and gzip.
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut c = Crc::new();
    for p in parts {
        c.update(p);
    }
    c.sum()
}

fn deflate_raw(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::new(level));
    e.write_all(data).expect("write to Vec");
    e.finish().expect("finish to Vec")
}

pub fn zlib(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::new(level));
    e.write_all(data).expect("write to Vec");
    e.finish().expect("finish to Vec")
}

pub fn gzip(data: &[u8], name: &str) -> Vec<u8> {
    let mut e = flate2::GzBuilder::new()
        .filename(name.as_bytes())
        .mtime(1_700_000_000)
        .write(Vec::new(), Compression::default());
    e.write_all(data).expect("write to Vec");
    e.finish().expect("finish to Vec")
}

pub fn gunzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data).read_to_end(&mut out)?;
    Ok(out)
}

// ---------------------------------------------------------------- PNG

pub const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

fn png_chunk(out: &mut Vec<u8>, ty: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(ty);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[ty, data]).to_be_bytes());
}

/// A decoded 8-bit PNG image (colour type 0 = grey or 2 = RGB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub pixels: Vec<u8>,
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = a as i16 + b as i16 - c as i16;
    let pa = (p - a as i16).abs();
    let pb = (p - b as i16).abs();
    let pc = (p - c as i16).abs();
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// Encode an image as PNG using one filter type for every row (0..=4).
pub fn png_encode(img: &Image, filter: u8, level: u32) -> Vec<u8> {
    let bpp = img.channels as usize;
    let stride = img.width as usize * bpp;
    let mut raw = Vec::with_capacity((stride + 1) * img.height as usize);
    let zero = vec![0u8; stride];
    for y in 0..img.height as usize {
        let row = &img.pixels[y * stride..(y + 1) * stride];
        let prev = if y == 0 {
            &zero[..]
        } else {
            &img.pixels[(y - 1) * stride..y * stride]
        };
        raw.push(filter);
        for x in 0..stride {
            let a = if x >= bpp { row[x - bpp] } else { 0 };
            let b = prev[x];
            let c = if x >= bpp { prev[x - bpp] } else { 0 };
            let v = match filter {
                0 => row[x],
                1 => row[x].wrapping_sub(a),
                2 => row[x].wrapping_sub(b),
                3 => row[x].wrapping_sub(((a as u16 + b as u16) / 2) as u8),
                _ => row[x].wrapping_sub(paeth(a, b, c)),
            };
            raw.push(v);
        }
    }
    let mut out = PNG_SIGNATURE.to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&img.width.to_be_bytes());
    ihdr.extend_from_slice(&img.height.to_be_bytes());
    ihdr.push(8);
    ihdr.push(if img.channels == 3 { 2 } else { 0 });
    ihdr.extend_from_slice(&[0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"tEXt", b"Software\0ward-sim corpus generator");
    // Split IDAT into 64 KiB chunks like real encoders do.
    let z = zlib(&raw, level);
    for part in z.chunks(65536) {
        png_chunk(&mut out, b"IDAT", part);
    }
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// Decode an 8-bit grey or RGB, non-interlaced PNG, verifying every chunk CRC.
pub fn png_decode(data: &[u8]) -> Result<Image, String> {
    if data.len() < 8 || &data[..8] != PNG_SIGNATURE {
        return Err("missing PNG signature".into());
    }
    let mut pos = 8;
    let (mut width, mut height, mut channels) = (0u32, 0u32, 0u8);
    let mut idat = Vec::new();
    let mut seen_iend = false;
    while pos + 12 <= data.len() {
        let len = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let ty = &data[pos + 4..pos + 8];
        if pos + 12 + len > data.len() {
            return Err("truncated chunk".into());
        }
        let body = &data[pos + 8..pos + 8 + len];
        let crc = u32::from_be_bytes(data[pos + 8 + len..pos + 12 + len].try_into().unwrap());
        if crc != crc32(&[ty, body]) {
            return Err(format!("bad CRC in {} chunk", String::from_utf8_lossy(ty)));
        }
        match ty {
            b"IHDR" => {
                if len != 13 {
                    return Err("bad IHDR length".into());
                }
                width = u32::from_be_bytes(body[0..4].try_into().unwrap());
                height = u32::from_be_bytes(body[4..8].try_into().unwrap());
                if body[8] != 8 || body[12] != 0 {
                    return Err("only 8-bit non-interlaced PNGs are supported".into());
                }
                channels = match body[9] {
                    0 => 1,
                    2 => 3,
                    other => return Err(format!("unsupported colour type {other}")),
                };
            }
            b"IDAT" => idat.extend_from_slice(body),
            b"IEND" => {
                seen_iend = true;
                break;
            }
            _ => {}
        }
        pos += 12 + len;
    }
    if !seen_iend || channels == 0 {
        return Err("missing IHDR or IEND".into());
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .map_err(|e| format!("bad IDAT zlib stream: {e}"))?;
    let bpp = channels as usize;
    let stride = width as usize * bpp;
    if raw.len() != (stride + 1) * height as usize {
        return Err("IDAT has the wrong size".into());
    }
    let mut pixels = vec![0u8; stride * height as usize];
    for y in 0..height as usize {
        let f = raw[y * (stride + 1)];
        let src = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for x in 0..stride {
            let a = if x >= bpp {
                pixels[y * stride + x - bpp]
            } else {
                0
            };
            let b = if y > 0 {
                pixels[(y - 1) * stride + x]
            } else {
                0
            };
            let c = if x >= bpp && y > 0 {
                pixels[(y - 1) * stride + x - bpp]
            } else {
                0
            };
            pixels[y * stride + x] = match f {
                0 => src[x],
                1 => src[x].wrapping_add(a),
                2 => src[x].wrapping_add(b),
                3 => src[x].wrapping_add(((a as u16 + b as u16) / 2) as u8),
                4 => src[x].wrapping_add(paeth(a, b, c)),
                other => return Err(format!("bad filter type {other}")),
            };
        }
    }
    Ok(Image {
        width,
        height,
        channels,
        pixels,
    })
}

// ---------------------------------------------------------------- ZIP

pub struct ZipEntry<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
    pub deflate: bool,
}

/// Write a ZIP archive (PKZIP 2.0, no data descriptors, fixed timestamps).
pub fn zip(entries: &[ZipEntry<'_>]) -> Vec<u8> {
    const DOS_TIME: u16 = (9 << 11) | (30 << 5); // 09:30:00
    const DOS_DATE: u16 = ((2024 - 1980) << 9) | (3 << 5) | 14; // 2024-03-14
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let crc = crc32(&[e.data]);
        let (method, body) = if e.deflate {
            (8u16, deflate_raw(e.data, 6))
        } else {
            (0u16, e.data.to_vec())
        };
        let offset = out.len() as u32;
        let name = e.name.as_bytes();
        // local file header
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&DOS_TIME.to_le_bytes());
        out.extend_from_slice(&DOS_DATE.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&body);
        // central directory header
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&(0x0300u16 | 20).to_le_bytes()); // made by: Unix, 2.0
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&method.to_le_bytes());
        central.extend_from_slice(&DOS_TIME.to_le_bytes());
        central.extend_from_slice(&DOS_DATE.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&(body.len() as u32).to_le_bytes());
        central.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 8]); // extra len, comment len, disk, internal attrs
        central.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n";

/// A WordprocessingML document (.docx) with one `<w:p>` per paragraph.
pub fn docx(title: &str, paragraphs: &[String]) -> Vec<u8> {
    let content_types = format!(
        "{XML_DECL}<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
<Default Extension=\"xml\" ContentType=\"application/xml\"/>\
<Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>\
<Override PartName=\"/docProps/core.xml\" ContentType=\"application/vnd.openxmlformats-package.core-properties+xml\"/>\
</Types>"
    );
    let rels = format!(
        "{XML_DECL}<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"word/document.xml\"/>\
<Relationship Id=\"rId2\" Type=\"http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties\" Target=\"docProps/core.xml\"/>\
</Relationships>"
    );
    let core = format!(
        "{XML_DECL}<cp:coreProperties xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" \
xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>{}</dc:title><dc:creator>Medical Secretaries</dc:creator></cp:coreProperties>",
        xml_escape(title)
    );
    let mut doc = format!(
        "{XML_DECL}<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>\
<w:p><w:pPr><w:pStyle w:val=\"Title\"/></w:pPr><w:r><w:t>{}</w:t></w:r></w:p>",
        xml_escape(title)
    );
    for p in paragraphs {
        doc.push_str("<w:p><w:r><w:t xml:space=\"preserve\">");
        doc.push_str(&xml_escape(p));
        doc.push_str("</w:t></w:r></w:p>");
    }
    doc.push_str(
        "<w:sectPr><w:pgSz w:w=\"11906\" w:h=\"16838\"/></w:sectPr></w:body></w:document>",
    );
    zip(&[
        ZipEntry {
            name: "[Content_Types].xml",
            data: content_types.as_bytes(),
            deflate: true,
        },
        ZipEntry {
            name: "_rels/.rels",
            data: rels.as_bytes(),
            deflate: true,
        },
        ZipEntry {
            name: "docProps/core.xml",
            data: core.as_bytes(),
            deflate: true,
        },
        ZipEntry {
            name: "word/document.xml",
            data: doc.as_bytes(),
            deflate: true,
        },
    ])
}

/// A cell of a spreadsheet row.
pub enum Cell {
    Text(String),
    Num(f64),
}

fn col_name(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap()
}

/// A SpreadsheetML workbook (.xlsx) with one sheet of inline-string cells.
pub fn xlsx(sheet: &str, rows: &[Vec<Cell>]) -> Vec<u8> {
    let content_types = format!(
        "{XML_DECL}<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
<Default Extension=\"xml\" ContentType=\"application/xml\"/>\
<Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>\
<Override PartName=\"/xl/worksheets/sheet1.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>\
</Types>"
    );
    let rels = format!(
        "{XML_DECL}<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"xl/workbook.xml\"/>\
</Relationships>"
    );
    let workbook = format!(
        "{XML_DECL}<workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" \
xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\">\
<sheets><sheet name=\"{}\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>",
        xml_escape(sheet)
    );
    let wb_rels = format!(
        "{XML_DECL}<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet1.xml\"/>\
</Relationships>"
    );
    let mut ws = format!(
        "{XML_DECL}<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>"
    );
    for (r, row) in rows.iter().enumerate() {
        ws.push_str(&format!("<row r=\"{}\">", r + 1));
        for (c, cell) in row.iter().enumerate() {
            let rf = format!("{}{}", col_name(c), r + 1);
            match cell {
                Cell::Text(t) => ws.push_str(&format!(
                    "<c r=\"{rf}\" t=\"inlineStr\"><is><t>{}</t></is></c>",
                    xml_escape(t)
                )),
                Cell::Num(n) => ws.push_str(&format!("<c r=\"{rf}\"><v>{n}</v></c>")),
            }
        }
        ws.push_str("</row>");
    }
    ws.push_str("</sheetData></worksheet>");
    zip(&[
        ZipEntry {
            name: "[Content_Types].xml",
            data: content_types.as_bytes(),
            deflate: true,
        },
        ZipEntry {
            name: "_rels/.rels",
            data: rels.as_bytes(),
            deflate: true,
        },
        ZipEntry {
            name: "xl/workbook.xml",
            data: workbook.as_bytes(),
            deflate: true,
        },
        ZipEntry {
            name: "xl/_rels/workbook.xml.rels",
            data: wb_rels.as_bytes(),
            deflate: true,
        },
        ZipEntry {
            name: "xl/worksheets/sheet1.xml",
            data: ws.as_bytes(),
            deflate: true,
        },
    ])
}

// ---------------------------------------------------------------- PDF

fn pdf_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '(' | ')' | '\\' => {
                o.push('\\');
                o.push(ch);
            }
            c if c.is_ascii() && !c.is_ascii_control() => o.push(c),
            _ => o.push('?'),
        }
    }
    o
}

/// Assemble a PDF from object bodies (object i+1 = bodies[i]); object 1 must be the catalog.
fn pdf_assemble(bodies: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(bodies.len());
    for (i, b) in bodies.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(b);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", bodies.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            bodies.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn stream_obj(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut b = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    b.extend_from_slice(data);
    b.extend_from_slice(b"\nendstream");
    b
}

/// A text PDF (Helvetica, A4), 50 lines per page.
pub fn pdf_text(lines: &[String]) -> Vec<u8> {
    let pages: Vec<&[String]> = if lines.is_empty() {
        vec![&[][..]]
    } else {
        lines.chunks(50).collect()
    };
    let n = pages.len();
    // 1 catalog, 2 pages, 3 font, then per page: page obj, content obj.
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    let mut bodies = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).into_bytes(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
    ];
    for (i, page) in pages.iter().enumerate() {
        bodies.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                5 + 2 * i
            )
            .into_bytes(),
        );
        let mut content = String::from("BT\n/F1 10 Tf\n14 TL\n50 790 Td\n");
        for l in page.iter() {
            content.push_str(&format!("({}) Tj T*\n", pdf_escape(l)));
        }
        content.push_str("ET");
        bodies.push(stream_obj("", content.as_bytes()));
    }
    pdf_assemble(&bodies)
}

/// A "scanned" PDF: one page holding a Flate-compressed greyscale image.
pub fn pdf_scan(width: u32, height: u32, grey: &[u8]) -> Vec<u8> {
    let img = zlib(grey, 6);
    let content = b"q 595 0 0 842 0 0 cm /Im1 Do Q";
    let bodies = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /XObject << /Im1 4 0 R >> >> /Contents 5 0 R >>".to_vec(),
        stream_obj(
            &format!("/Type /XObject /Subtype /Image /Width {width} /Height {height} /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode"),
            &img,
        ),
        stream_obj("", content),
    ];
    pdf_assemble(&bodies)
}

// ---------------------------------------------------------------- DICOM

pub const TS_EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
pub const TS_DEFLATED_LE: &str = "1.2.840.10008.1.2.1.99";
const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";

fn long_vr(vr: &[u8; 2]) -> bool {
    matches!(
        vr,
        b"OB" | b"OW" | b"OF" | b"OD" | b"OL" | b"OV" | b"SQ" | b"UT" | b"UN" | b"UC" | b"UR"
    )
}

fn dicom_elem(out: &mut Vec<u8>, group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) {
    let mut v = value.to_vec();
    if v.len() % 2 == 1 {
        v.push(if vr == b"UI" || vr == b"OB" { 0 } else { b' ' });
    }
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&elem.to_le_bytes());
    out.extend_from_slice(vr);
    if long_vr(vr) {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(&v);
}

fn dicom_meta(sop_instance: &str, transfer_syntax: &str) -> Vec<u8> {
    let mut body = Vec::new();
    dicom_elem(&mut body, 0x0002, 0x0001, b"OB", &[0, 1]);
    dicom_elem(
        &mut body,
        0x0002,
        0x0002,
        b"UI",
        CT_IMAGE_STORAGE.as_bytes(),
    );
    dicom_elem(&mut body, 0x0002, 0x0003, b"UI", sop_instance.as_bytes());
    dicom_elem(&mut body, 0x0002, 0x0010, b"UI", transfer_syntax.as_bytes());
    dicom_elem(
        &mut body,
        0x0002,
        0x0012,
        b"UI",
        b"1.2.826.0.1.3680043.9.7133.1",
    );
    dicom_elem(&mut body, 0x0002, 0x0013, b"SH", b"WARD_SIM_1");
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    dicom_elem(
        &mut out,
        0x0002,
        0x0000,
        b"UL",
        &(body.len() as u32).to_le_bytes(),
    );
    out.extend_from_slice(&body);
    out
}

pub struct DicomInfo<'a> {
    pub patient_name: &'a str,
    pub patient_id: &'a str,
    pub birth_date: &'a str,
    pub sex: &'a str,
    pub study_date: &'a str,
    pub modality: &'a str,
    pub study_uid: &'a str,
    pub series_uid: &'a str,
    pub sop_uid: &'a str,
    pub instance: u32,
    pub rows: u16,
    pub cols: u16,
}

/// A DICOM Part 10 file, explicit VR little endian, 16-bit monochrome pixels.
pub fn dicom(info: &DicomInfo<'_>, pixels: &[u16]) -> Vec<u8> {
    let mut out = dicom_meta(info.sop_uid, TS_EXPLICIT_LE);
    let o = &mut out;
    dicom_elem(o, 0x0008, 0x0016, b"UI", CT_IMAGE_STORAGE.as_bytes());
    dicom_elem(o, 0x0008, 0x0018, b"UI", info.sop_uid.as_bytes());
    dicom_elem(o, 0x0008, 0x0020, b"DA", info.study_date.as_bytes());
    dicom_elem(o, 0x0008, 0x0060, b"CS", info.modality.as_bytes());
    dicom_elem(o, 0x0008, 0x0080, b"LO", b"ST ELSEWHERE GENERAL HOSPITAL");
    dicom_elem(o, 0x0010, 0x0010, b"PN", info.patient_name.as_bytes());
    dicom_elem(o, 0x0010, 0x0020, b"LO", info.patient_id.as_bytes());
    dicom_elem(o, 0x0010, 0x0030, b"DA", info.birth_date.as_bytes());
    dicom_elem(o, 0x0010, 0x0040, b"CS", info.sex.as_bytes());
    dicom_elem(o, 0x0020, 0x000D, b"UI", info.study_uid.as_bytes());
    dicom_elem(o, 0x0020, 0x000E, b"UI", info.series_uid.as_bytes());
    dicom_elem(
        o,
        0x0020,
        0x0013,
        b"IS",
        info.instance.to_string().as_bytes(),
    );
    dicom_elem(o, 0x0028, 0x0002, b"US", &1u16.to_le_bytes());
    dicom_elem(o, 0x0028, 0x0004, b"CS", b"MONOCHROME2");
    dicom_elem(o, 0x0028, 0x0010, b"US", &info.rows.to_le_bytes());
    dicom_elem(o, 0x0028, 0x0011, b"US", &info.cols.to_le_bytes());
    dicom_elem(o, 0x0028, 0x0100, b"US", &16u16.to_le_bytes());
    dicom_elem(o, 0x0028, 0x0101, b"US", &12u16.to_le_bytes());
    dicom_elem(o, 0x0028, 0x0102, b"US", &11u16.to_le_bytes());
    dicom_elem(o, 0x0028, 0x0103, b"US", &0u16.to_le_bytes());
    let mut px = Vec::with_capacity(pixels.len() * 2);
    for p in pixels {
        px.extend_from_slice(&p.to_le_bytes());
    }
    dicom_elem(o, 0x7FE0, 0x0010, b"OW", &px);
    out
}

/// Parsed outline of a DICOM Part 10 file.
#[derive(Debug)]
pub struct DicomParts {
    pub sop_instance: String,
    pub transfer_syntax: String,
    /// Offset where the dataset (after the file meta group) begins.
    pub dataset_offset: usize,
}

fn ui_str(v: &[u8]) -> String {
    String::from_utf8_lossy(v)
        .trim_end_matches(['\0', ' '])
        .to_string()
}

/// Parse the preamble, "DICM" and the explicit-VR file meta group.
pub fn dicom_parse(data: &[u8]) -> Result<DicomParts, String> {
    if data.len() < 144 || &data[128..132] != b"DICM" {
        return Err("missing DICM prefix".into());
    }
    let mut pos = 132;
    let mut end = None;
    let mut sop = String::new();
    let mut ts = String::new();
    while pos + 8 <= data.len() {
        let group = u16::from_le_bytes([data[pos], data[pos + 1]]);
        if group != 0x0002 {
            break;
        }
        let elem = u16::from_le_bytes([data[pos + 2], data[pos + 3]]);
        let vr: [u8; 2] = [data[pos + 4], data[pos + 5]];
        let (len, hdr) = if long_vr(&vr) {
            if pos + 12 > data.len() {
                return Err("truncated meta element".into());
            }
            (
                u32::from_le_bytes(data[pos + 8..pos + 12].try_into().unwrap()) as usize,
                12,
            )
        } else {
            (
                u16::from_le_bytes([data[pos + 6], data[pos + 7]]) as usize,
                8,
            )
        };
        let v = data
            .get(pos + hdr..pos + hdr + len)
            .ok_or("truncated meta element value")?;
        match elem {
            0x0000 if len == 4 => {
                end = Some(pos + hdr + 4 + u32::from_le_bytes(v.try_into().unwrap()) as usize)
            }
            0x0003 => sop = ui_str(v),
            0x0010 => ts = ui_str(v),
            _ => {}
        }
        pos += hdr + len;
    }
    let dataset_offset = end.ok_or("missing (0002,0000) group length")?;
    if dataset_offset != pos {
        return Err("file meta group length does not match its elements".into());
    }
    if ts.is_empty() {
        return Err("missing transfer syntax".into());
    }
    Ok(DicomParts {
        sop_instance: sop,
        transfer_syntax: ts,
        dataset_offset,
    })
}

/// Re-encode an explicit-VR-LE DICOM file as Deflated Explicit VR Little Endian
/// (what a PACS archiver does to save space). Returns None if already deflated.
pub fn dicom_deflate(data: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let p = dicom_parse(data)?;
    if p.transfer_syntax == TS_DEFLATED_LE {
        return Ok(None);
    }
    let mut out = dicom_meta(&p.sop_instance, TS_DEFLATED_LE);
    out.extend_from_slice(&deflate_raw(&data[p.dataset_offset..], 6));
    Ok(Some(out))
}

/// Standard base64 (RFC 4648) with line breaks every 76 characters, like `base64(1)`.
pub fn base64_lines(data: &[u8]) -> Vec<u8> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(data.len() * 4 / 3 + data.len() / 57 + 4);
    let mut col = 0;
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        out.push(T[(n >> 18) as usize & 63]);
        out.push(T[(n >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63]
        } else {
            b'='
        });
        col += 4;
        if col == 76 {
            out.push(b'\n');
            col = 0;
        }
    }
    if col != 0 {
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_roundtrip_all_filters() {
        let img = Image {
            width: 17,
            height: 9,
            channels: 3,
            pixels: (0..17 * 9 * 3).map(|i| (i * 7 % 251) as u8).collect(),
        };
        for f in 0..=4 {
            let enc = png_encode(&img, f, 6);
            assert_eq!(png_decode(&enc).unwrap(), img);
        }
    }

    #[test]
    fn dicom_meta_parses_and_deflates() {
        let info = DicomInfo {
            patient_name: "DOE^JANE",
            patient_id: "H123",
            birth_date: "19700101",
            sex: "F",
            study_date: "20240101",
            modality: "CT",
            study_uid: "1.2.3",
            series_uid: "1.2.3.4",
            sop_uid: "1.2.3.4.5",
            instance: 1,
            rows: 4,
            cols: 4,
        };
        let d = dicom(&info, &[100; 16]);
        let p = dicom_parse(&d).unwrap();
        assert_eq!(p.transfer_syntax, TS_EXPLICIT_LE);
        assert_eq!(p.sop_instance, "1.2.3.4.5");
        let z = dicom_deflate(&d).unwrap().unwrap();
        assert_eq!(dicom_parse(&z).unwrap().transfer_syntax, TS_DEFLATED_LE);
        assert!(dicom_deflate(&z).unwrap().is_none());
    }

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_lines(b"foobar"), b"Zm9vYmFy\n");
        assert_eq!(base64_lines(b"fo"), b"Zm8=\n");
        assert_eq!(base64_lines(b"f"), b"Zg==\n");
    }
}
