// An AS2 trading partner on BouncyCastle and JavaMail, the libraries OpenAS2 and Mendelson are
// built on, for the gateway's end-to-end tests. It builds messages the way OpenAS2's sender does
// (SMIMESignedGenerator, SMIMECompressedGenerator, SMIMEEnvelopedGenerator), opens them the way
// OpenAS2's receiver does, computes MICs with OpenAS2's rules and checks the MIC of every receipt
// as OpenAS2 does: the algorithm (ignoring case and hyphens) and then the value, as strings.
//
//   java -cp <bc jars>:<out> As2Partner serve CONFIG.properties
//
// CONFIG: port, control_port, dir, key, cert (PEM; this partner's identity, whatever AS2 ID it is sent to),
// partner_cert (the station's certificate, to verify and encrypt), url (where to send),
// station (the station's AS2 ID), https (serve TLS with tls_key/tls_cert, else key/cert), trust (PEM certificate the
// client trusts for https:// URLs), client_key/client_cert (a TLS client certificate to present).
//
// It serves POST / for AS2 messages and asynchronous receipts, and (on control_port, plain HTTP
// on 127.0.0.1) POST /control/send for the tests: the body is a properties text (file, name, as2_from, content_type, sign, pss, encrypt,
// oaep, compress, mdn, signed_mdn, micalg) and the answer a JSON report. What it sees goes to
// <dir>/events.jsonl, one JSON object a line; payloads it receives to
// <dir>/received/<message-id>/<file name>.

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.StringReader;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.cert.X509Certificate;
import java.text.SimpleDateFormat;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.Date;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Executors;

import javax.activation.DataHandler;
import javax.crypto.spec.OAEPParameterSpec;
import javax.mail.Header;
import javax.mail.internet.ContentType;
import javax.mail.internet.InternetHeaders;
import javax.mail.internet.MimeBodyPart;
import javax.mail.internet.MimeMultipart;
import javax.mail.util.ByteArrayDataSource;
import javax.net.ssl.HttpsURLConnection;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManagerFactory;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsParameters;
import com.sun.net.httpserver.HttpsServer;

import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaCertStore;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cms.CMSAlgorithm;
import org.bouncycastle.cms.CMSAuthEnvelopedData;
import org.bouncycastle.cms.CMSAuthEnvelopedDataGenerator;
import org.bouncycastle.cms.CMSProcessableByteArray;
import org.bouncycastle.cms.RecipientInformation;
import org.bouncycastle.cms.SignerInformation;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoGeneratorBuilder;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.cms.jcajce.JceCMSContentEncryptorBuilder;
import org.bouncycastle.cms.jcajce.JceKeyTransAuthEnvelopedRecipient;
import org.bouncycastle.cms.jcajce.JceKeyTransEnvelopedRecipient;
import org.bouncycastle.cms.jcajce.JceKeyTransRecipientInfoGenerator;
import org.bouncycastle.cms.jcajce.ZlibCompressor;
import org.bouncycastle.cms.jcajce.ZlibExpanderProvider;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.mail.smime.SMIMECompressed;
import org.bouncycastle.mail.smime.SMIMECompressedGenerator;
import org.bouncycastle.mail.smime.SMIMEEnveloped;
import org.bouncycastle.mail.smime.SMIMEEnvelopedGenerator;
import org.bouncycastle.mail.smime.SMIMESigned;
import org.bouncycastle.mail.smime.SMIMESignedGenerator;
import org.bouncycastle.mail.smime.SMIMEUtil;
import org.bouncycastle.mail.smime.util.CRLFOutputStream;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.operator.OutputAEADEncryptor;
import org.bouncycastle.operator.jcajce.JcaAlgorithmParametersConverter;

public final class As2Partner {
    private final Properties cfg;
    private final Path dir;
    private final PrivateKey key;
    private final X509Certificate cert;
    private final X509Certificate partnerCert;
    private final SSLContext clientTls;

    /** A failure with the disposition modifier a receipt reports for it. */
    static final class Disposition extends Exception {
        final String modifier;

        Disposition(String modifier, String message, Throwable cause) {
            super(message, cause);
            this.modifier = modifier;
        }
    }

    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        // RFC 2231 and RFC 2047 file names, as OpenAS2 reads them.
        System.setProperty("mail.mime.decodefilename", "true");
        System.setProperty("mail.mime.decodeparameters", "true");
        Properties cfg = new Properties();
        try (InputStream in = Files.newInputStream(Paths.get(args[1]))) {
            cfg.load(in);
        }
        As2Partner p = new As2Partner(cfg);
        if (!"serve".equals(args[0])) {
            throw new IllegalArgumentException("usage: As2Partner serve CONFIG");
        }
        p.serve();
    }

    As2Partner(Properties cfg) throws Exception {
        this.cfg = cfg;
        this.dir = Paths.get(cfg.getProperty("dir"));
        Files.createDirectories(dir.resolve("received"));
        Files.createDirectories(dir.resolve("sent"));
        this.key = readKey(Paths.get(cfg.getProperty("key")));
        this.cert = readCert(Paths.get(cfg.getProperty("cert")));
        this.partnerCert = readCert(Paths.get(cfg.getProperty("partner_cert")));
        this.clientTls = clientTls();
    }

    // ------------------------------------------------------------------ keys and TLS

    static X509Certificate readCert(Path p) throws Exception {
        try (PEMParser r = new PEMParser(Files.newBufferedReader(p))) {
            Object o = r.readObject();
            return new JcaX509CertificateConverter().setProvider("BC").getCertificate((X509CertificateHolder) o);
        }
    }

    static PrivateKey readKey(Path p) throws Exception {
        try (PEMParser r = new PEMParser(Files.newBufferedReader(p))) {
            Object o = r.readObject();
            JcaPEMKeyConverter conv = new JcaPEMKeyConverter().setProvider("BC");
            if (o instanceof PEMKeyPair) {
                return conv.getKeyPair((PEMKeyPair) o).getPrivate();
            }
            return conv.getPrivateKey((PrivateKeyInfo) o);
        }
    }

    private SSLContext clientTls() throws Exception {
        SSLContext ctx = SSLContext.getInstance("TLS");
        TrustManagerFactory tmf = null;
        if (cfg.getProperty("trust") != null) {
            KeyStore ts = KeyStore.getInstance("PKCS12");
            ts.load(null, null);
            ts.setCertificateEntry("trust", readCert(Paths.get(cfg.getProperty("trust"))));
            tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(ts);
        }
        KeyManagerFactory kmf = null;
        if (cfg.getProperty("client_key") != null) {
            kmf = keyManagers(readKey(Paths.get(cfg.getProperty("client_key"))),
                    readCert(Paths.get(cfg.getProperty("client_cert"))));
        }
        ctx.init(kmf == null ? null : kmf.getKeyManagers(), tmf == null ? null : tmf.getTrustManagers(),
                new SecureRandom());
        return ctx;
    }

    static KeyManagerFactory keyManagers(PrivateKey k, X509Certificate c) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        char[] pw = "in-memory".toCharArray();
        ks.setKeyEntry("me", k, pw, new java.security.cert.Certificate[] {c});
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, pw);
        return kmf;
    }

    // ------------------------------------------------------------------ the server

    void serve() throws Exception {
        InetSocketAddress addr = new InetSocketAddress("127.0.0.1", Integer.parseInt(cfg.getProperty("port")));
        HttpServer server;
        if ("true".equals(cfg.getProperty("https"))) {
            HttpsServer s = HttpsServer.create(addr, 0);
            SSLContext ctx = SSLContext.getInstance("TLS");
            PrivateKey tlsKey = cfg.getProperty("tls_key") == null ? key : readKey(Paths.get(cfg.getProperty("tls_key")));
            X509Certificate tlsCert =
                    cfg.getProperty("tls_cert") == null ? cert : readCert(Paths.get(cfg.getProperty("tls_cert")));
            ctx.init(keyManagers(tlsKey, tlsCert).getKeyManagers(), null, new SecureRandom());
            s.setHttpsConfigurator(new HttpsConfigurator(ctx) {
                @Override
                public void configure(HttpsParameters params) {
                    SSLParameters p = ctx.getDefaultSSLParameters();
                    p.setProtocols(new String[] {"TLSv1.3", "TLSv1.2"});
                    params.setSSLParameters(p);
                }
            });
            server = s;
        } else {
            server = HttpServer.create(addr, 0);
        }
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.createContext("/", this::handle);
        server.start();
        HttpServer control = HttpServer.create(
                new InetSocketAddress("127.0.0.1", Integer.parseInt(cfg.getProperty("control_port"))), 0);
        control.setExecutor(Executors.newFixedThreadPool(2));
        control.createContext("/control/send", this::control);
        control.start();
        event(map("kind", "listening", "port", cfg.getProperty("port")));
    }

    private void handle(HttpExchange ex) throws IOException {
        try {
            byte[] body = ex.getRequestBody().readAllBytes();
            Map<String, String> h = new LinkedHashMap<>();
            for (Map.Entry<String, List<String>> e : ex.getRequestHeaders().entrySet()) {
                h.put(e.getKey().toLowerCase(Locale.ROOT), String.join(", ", e.getValue()));
            }
            if (!"POST".equals(ex.getRequestMethod())) {
                reply(ex, 405, Map.of(), new byte[0]);
                return;
            }
            if (isMdn(h.get("content-type"), body)) {
                receiveAsyncMdn(h, body);
                reply(ex, 200, Map.of(), new byte[0]);
                return;
            }
            receiveMessage(ex, h, body);
        } catch (Exception e) {
            event(map("kind", "error", "error", describe(e)));
            reply(ex, 500, Map.of(), describe(e).getBytes(StandardCharsets.UTF_8));
        } finally {
            ex.close();
        }
    }

    private void control(HttpExchange ex) throws IOException {
        try {
            Properties order = new Properties();
            order.load(new StringReader(new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8)));
            String report;
            try {
                report = send(order);
            } catch (Exception e) {
                report = "{\"error\":" + json(describe(e)) + "}";
            }
            reply(ex, 200, Map.of("Content-Type", "application/json"), report.getBytes(StandardCharsets.UTF_8));
        } finally {
            ex.close();
        }
    }

    private static void reply(HttpExchange ex, int status, Map<String, String> headers, byte[] body) throws IOException {
        for (Map.Entry<String, String> e : headers.entrySet()) {
            ex.getResponseHeaders().add(e.getKey(), e.getValue());
        }
        ex.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        if (body.length > 0) {
            try (OutputStream os = ex.getResponseBody()) {
                os.write(body);
            }
        }
    }

    // ------------------------------------------------------------------ receiving

    /** The top-level entity: the HTTP Content-* headers over the body (as OpenAS2 builds it). */
    static MimeBodyPart topPart(Map<String, String> h, byte[] body) throws Exception {
        InternetHeaders ih = new InternetHeaders();
        ih.addHeader("Content-Type", h.get("content-type"));
        ih.addHeader("Content-Transfer-Encoding", h.getOrDefault("content-transfer-encoding", "binary"));
        if (h.get("content-disposition") != null) {
            ih.addHeader("Content-Disposition", h.get("content-disposition"));
        }
        return new MimeBodyPart(ih, body);
    }

    static boolean isMdn(String contentType, byte[] body) {
        try {
            ContentType ct = new ContentType(contentType);
            if (ct.match("multipart/report")) {
                return true;
            }
            if (!ct.match("multipart/signed")) {
                return false;
            }
            MimeMultipart mm = new MimeMultipart(new ByteArrayDataSource(body, contentType));
            return mm.getBodyPart(0).isMimeType("multipart/report");
        } catch (Exception e) {
            return false;
        }
    }

    static String smimeType(MimeBodyPart p) throws Exception {
        String t = new ContentType(p.getContentType()).getParameter("smime-type");
        return t == null ? "" : t.toLowerCase(Locale.ROOT);
    }

    static boolean isPkcs7Mime(MimeBodyPart p) throws Exception {
        return p.isMimeType("application/pkcs7-mime") || p.isMimeType("application/x-pkcs7-mime");
    }

    /** The first MIC algorithm of signed-receipt-micalg this partner supports, as written. */
    static String requestedMicalg(String options) {
        if (options == null) {
            return null;
        }
        for (String param : options.split(";")) {
            String[] kv = param.split("=", 2);
            if (kv.length == 2 && kv[0].trim().equalsIgnoreCase("signed-receipt-micalg")) {
                String[] items = kv[1].split(",");
                for (int i = 1; i < items.length; i++) {
                    if (javaDigest(items[i].trim()) != null) {
                        return items[i].trim();
                    }
                }
            }
        }
        return null;
    }

    /** A MIC algorithm name as the JCA knows it (sha-256 and sha256 alike), or null. */
    static String javaDigest(String name) {
        switch (name.toLowerCase(Locale.ROOT).replace("-", "")) {
            case "sha1": return "SHA-1";
            case "sha224": return "SHA-224";
            case "sha256": return "SHA-256";
            case "sha384": return "SHA-384";
            case "sha512": return "SHA-512";
            case "md5": return "MD5";
            default: return null;
        }
    }

    /** OpenAS2's MIC: the part with or without its headers, CRLF canonical unless binary. */
    static String calculateMic(MimeBodyPart part, String alg, boolean includeHeaders) throws Exception {
        ByteArrayOutputStream bout = new ByteArrayOutputStream();
        String encoding = part.getEncoding();
        if (encoding == null) {
            encoding = "binary";
        }
        OutputStream os = "binary".equalsIgnoreCase(encoding) ? bout : new CRLFOutputStream(bout);
        if (includeHeaders) {
            part.writeTo(os);
        } else {
            part.getInputStream().transferTo(os);
        }
        os.flush();
        byte[] data = bout.toByteArray();
        int start = 0;
        while (start + 1 < data.length && data[start] == '\r' && data[start + 1] == '\n') {
            start += 2;
        }
        MessageDigest md = MessageDigest.getInstance(javaDigest(alg), "BC");
        md.update(data, start, data.length - start);
        return Base64.getEncoder().encodeToString(md.digest()) + ", " + alg;
    }

    private void receiveMessage(HttpExchange ex, Map<String, String> h, byte[] body) throws Exception {
        String from = unquote(h.get("as2-from"));
        String to = unquote(h.get("as2-to"));
        String messageId = h.get("message-id");
        String options = h.get("disposition-notification-options");
        String micalg = requestedMicalg(options);
        Map<String, Object> ev = map("kind", "message", "message_id", messageId, "from", from, "to", to);
        String disposition = "processed";
        String mic = null;
        boolean encrypted = false;
        boolean signed = false;
        boolean compressed = false;
        try {
            MimeBodyPart part = topPart(h, body);
            if (isPkcs7Mime(part) && smimeType(part).contains("enveloped")) {
                encrypted = true;
                try {
                    byte[] plain;
                    if (smimeType(part).contains("authenveloped")) {
                        CMSAuthEnvelopedData ad = new CMSAuthEnvelopedData(part.getInputStream());
                        RecipientInformation ri = ad.getRecipientInfos().getRecipients().iterator().next();
                        plain = ri.getContent(new JceKeyTransAuthEnvelopedRecipient(key).setProvider("BC"));
                        ev.put("cipher", org.bouncycastle.asn1.cms.AuthEnvelopedData
                                .getInstance(ad.toASN1Structure().getContent())
                                .getAuthEncryptedContentInfo().getContentEncryptionAlgorithm()
                                .getAlgorithm().getId());
                        ev.put("key_transport", ri.getKeyEncryptionAlgOID());
                    } else {
                        SMIMEEnveloped env = new SMIMEEnveloped(part);
                        RecipientInformation ri = env.getRecipientInfos().getRecipients().iterator().next();
                        plain = ri.getContent(new JceKeyTransEnvelopedRecipient(key).setProvider("BC"));
                        ev.put("cipher", env.getEncryptionAlgOID());
                        ev.put("key_transport", ri.getKeyEncryptionAlgOID());
                    }
                    part = SMIMEUtil.toMimeBodyPart(plain);
                } catch (Exception e) {
                    throw new Disposition("decryption-failed", "cannot decrypt", e);
                }
            }
            if (isPkcs7Mime(part) && smimeType(part).contains("compressed")) {
                compressed = true;
                part = decompress(part);
            }
            if (part.isMimeType("multipart/signed")) {
                signed = true;
                try {
                    SMIMESigned s = new SMIMESigned(new MimeMultipart(part.getDataHandler().getDataSource()));
                    SignerInformation si = s.getSignerInfos().getSigners().iterator().next();
                    if (!si.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(partnerCert))) {
                        throw new IllegalStateException("signature does not verify");
                    }
                    ev.put("digest", si.getDigestAlgOID());
                    ev.put("signature_algorithm", si.getEncryptionAlgOID());
                    part = s.getContent();
                } catch (Exception e) {
                    throw new Disposition("integrity-check-failed", "signature", e);
                }
                // The MIC is over the signed entity, before any decompression inside it.
                if (micalg != null) {
                    mic = calculateMic(part, micalg, true);
                }
            }
            if (isPkcs7Mime(part) && smimeType(part).contains("compressed")) {
                compressed = true;
                part = decompress(part);
            }
            if (!signed && micalg != null) {
                mic = calculateMic(part, micalg, encrypted);
            }
            byte[] payload = part.getInputStream().readAllBytes();
            String name = part.getFileName();
            String base = name == null ? "payload.bin" : Paths.get(name).getFileName().toString();
            Path stored = dir.resolve("received").resolve(fileSafe(messageId));
            Files.createDirectories(stored);
            stored = stored.resolve(base);
            Files.write(stored, payload);
            ev.put("stored", stored.toString());
            ev.put("filename", name);
            ev.put("size", payload.length);
            ev.put("content_type", part.getContentType());
        } catch (Disposition d) {
            disposition = "processed/error: " + d.modifier;
            ev.put("error", describe(d));
        } catch (Exception e) {
            disposition = "processed/error: unexpected-processing-error";
            ev.put("error", describe(e));
        }
        ev.put("status", disposition);
        ev.put("signed", signed);
        ev.put("encrypted", encrypted);
        ev.put("compressed", compressed);
        ev.put("mic", mic);
        ev.put("asked_micalg", micalg);
        event(ev);
        if (h.get("disposition-notification-to") == null) {
            reply(ex, 200, Map.of(), new byte[0]);
            return;
        }
        boolean signMdn = options != null && options.toLowerCase(Locale.ROOT).contains("pkcs7-signature");
        Mdn mdn = buildMdn(to, from, messageId, disposition, mic, signMdn ? (micalg == null ? "sha-256" : micalg) : null);
        String async = h.get("receipt-delivery-option");
        if (async != null && !async.isBlank()) {
            reply(ex, 200, Map.of(), new byte[0]);
            new Thread(() -> postAsyncMdn(async.trim(), mdn, messageId)).start();
            return;
        }
        reply(ex, 200, mdn.headers, mdn.body);
    }

    static MimeBodyPart decompress(MimeBodyPart part) throws Disposition {
        try {
            SMIMECompressed c = new SMIMECompressed(part);
            return SMIMEUtil.toMimeBodyPart(c.getContent(new ZlibExpanderProvider()));
        } catch (Exception e) {
            throw new Disposition("decompression-failed", "cannot decompress", e);
        }
    }

    static final class Mdn {
        final Map<String, String> headers = new LinkedHashMap<>();
        byte[] body;
    }

    /** A receipt as OpenAS2 writes one: text part, disposition report, signed if asked. */
    private Mdn buildMdn(String us, String them, String messageId, String disposition, String mic, String signWith)
            throws Exception {
        String boundary = "----=_java_report_" + Long.toHexString(new SecureRandom().nextLong());
        StringBuilder report = new StringBuilder();
        report.append("Reporting-UA: BouncyCastle AS2 test partner\r\n");
        report.append("Original-Recipient: rfc822; ").append(quote(us)).append("\r\n");
        report.append("Final-Recipient: rfc822; ").append(quote(us)).append("\r\n");
        report.append("Original-Message-ID: ").append(messageId).append("\r\n");
        report.append("Disposition: automatic-action/MDN-sent-automatically; ").append(disposition).append("\r\n");
        if (mic != null) {
            report.append("Received-Content-MIC: ").append(mic).append("\r\n");
        }
        String text = disposition.equals("processed")
                ? "The AS2 message has been received and processed."
                : "The AS2 message could not be processed: " + disposition;
        String reportType = "multipart/report; report-type=disposition-notification; boundary=\"" + boundary + "\"";
        String reportBody = "--" + boundary + "\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
                + text + "\r\n--" + boundary + "\r\nContent-Type: message/disposition-notification\r\n"
                + "Content-Transfer-Encoding: 7bit\r\n\r\n" + report + "\r\n--" + boundary + "--\r\n";
        Mdn m = new Mdn();
        m.headers.put("AS2-Version", "1.2");
        m.headers.put("AS2-From", quote(us));
        m.headers.put("AS2-To", quote(them));
        m.headers.put("Message-ID", "<java-mdn-" + Long.toHexString(new SecureRandom().nextLong()) + "@bc.test>");
        m.headers.put("Date", new SimpleDateFormat("EEE, dd MMM yyyy HH:mm:ss Z", Locale.ENGLISH).format(new Date()));
        m.headers.put("Subject", "Message Disposition Notification");
        m.headers.put("MIME-Version", "1.0");
        if (signWith == null) {
            m.headers.put("Content-Type", reportType);
            m.body = reportBody.getBytes(StandardCharsets.US_ASCII);
            return m;
        }
        InternetHeaders ih = new InternetHeaders();
        ih.addHeader("Content-Type", reportType);
        MimeBodyPart reportPart = new MimeBodyPart(ih, reportBody.getBytes(StandardCharsets.US_ASCII));
        MimeMultipart signed = signer(javaDigest(signWith), false).generate(reportPart);
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        signed.writeTo(b);
        m.headers.put("Content-Type", unfold(signed.getContentType()));
        m.body = b.toByteArray();
        return m;
    }

    private void postAsyncMdn(String url, Mdn mdn, String messageId) {
        try {
            Response r = post(url, mdn.headers, mdn.body);
            event(map("kind", "async-mdn-posted", "message_id", messageId, "http", r.status));
        } catch (Exception e) {
            event(map("kind", "async-mdn-posted", "message_id", messageId, "error", describe(e)));
        }
    }

    // ------------------------------------------------------------------ receipts we get

    /** A receipt for something we sent: its signature verified, its MIC compared as OpenAS2 does. */
    private Map<String, Object> checkMdn(Map<String, String> h, byte[] body, String expectedMic) {
        Map<String, Object> r = new LinkedHashMap<>();
        try {
            MimeBodyPart report = topPart(h, body);
            boolean signed = false;
            if (report.isMimeType("multipart/signed")) {
                SMIMESigned s = new SMIMESigned(new MimeMultipart(report.getDataHandler().getDataSource()));
                SignerInformation si = s.getSignerInfos().getSigners().iterator().next();
                if (!si.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(partnerCert))) {
                    throw new IllegalStateException("the receipt's signature does not verify");
                }
                signed = true;
                report = s.getContent();
            }
            MimeMultipart parts = new MimeMultipart(report.getDataHandler().getDataSource());
            for (int i = 0; i < parts.getCount(); i++) {
                MimeBodyPart p = (MimeBodyPart) parts.getBodyPart(i);
                if (p.isMimeType("message/disposition-notification")) {
                    InternetHeaders fields = new InternetHeaders(p.getRawInputStream());
                    r.put("disposition", fields.getHeader("Disposition", ", "));
                    r.put("original_message_id", fields.getHeader("Original-Message-ID", ", "));
                    r.put("mic", fields.getHeader("Received-Content-MIC", ", "));
                }
            }
            r.put("signed", signed);
            r.put("mic_check", micCheck(expectedMic, (String) r.get("mic")));
        } catch (Exception e) {
            r.put("error", describe(e));
        }
        return r;
    }

    /** OpenAS2's AS2Util.checkMDN: the algorithm (case and hyphens aside), then the value. */
    static String micCheck(String calculated, String returned) {
        if (calculated == null) {
            return "not-checked";
        }
        if (returned == null || returned.isBlank()) {
            return "missing";
        }
        java.util.regex.Pattern p = java.util.regex.Pattern.compile("^\\s*(\\S+)\\s*,\\s*(\\S+)\\s*$");
        java.util.regex.Matcher rm = p.matcher(returned);
        java.util.regex.Matcher cm = p.matcher(calculated);
        if (!rm.find() || !cm.find()) {
            return "malformed: " + returned;
        }
        if (!cm.group(2).replace("-", "").equalsIgnoreCase(rm.group(2).replace("-", ""))) {
            return "algorithm-mismatch: sent " + cm.group(2) + ", returned " + rm.group(2);
        }
        return cm.group(1).equals(rm.group(1)) ? "match" : "mismatch";
    }

    private void receiveAsyncMdn(Map<String, String> h, byte[] body) throws Exception {
        Map<String, Object> probe = checkMdn(h, body, null);
        String original = (String) probe.get("original_message_id");
        String expected = null;
        if (original != null) {
            Path pending = dir.resolve("sent").resolve(fileSafe(original) + ".mic");
            if (Files.exists(pending)) {
                expected = Files.readString(pending);
                if (expected.isEmpty()) {
                    expected = null;
                }
            }
        }
        Map<String, Object> r = checkMdn(h, body, expected);
        r.put("kind", "mdn");
        r.put("original", original);
        r.put("from", unquote(h.get("as2-from")));
        event(r);
    }

    // ------------------------------------------------------------------ sending

    private SMIMESignedGenerator signer(String javaDigest, boolean pss) throws Exception {
        String alg = javaDigest.replace("-", "") + (pss ? "withRSAandMGF1" : "withRSA");
        SMIMESignedGenerator gen = new SMIMESignedGenerator(SMIMESignedGenerator.RFC5751_MICALGS);
        gen.addSignerInfoGenerator(new JcaSimpleSignerInfoGeneratorBuilder().setProvider("BC").build(alg, key, cert));
        gen.addCertificates(new JcaCertStore(Collections.singletonList(cert)));
        return gen;
    }

    static ASN1ObjectIdentifier cipherOid(String name) {
        switch (name.toLowerCase(Locale.ROOT)) {
            case "3des": case "3des-cbc": return CMSAlgorithm.DES_EDE3_CBC;
            case "aes128-cbc": return CMSAlgorithm.AES128_CBC;
            case "aes192-cbc": return CMSAlgorithm.AES192_CBC;
            case "aes256-cbc": return CMSAlgorithm.AES256_CBC;
            case "aes128-gcm": return CMSAlgorithm.AES128_GCM;
            case "aes256-gcm": return CMSAlgorithm.AES256_GCM;
            default: throw new IllegalArgumentException("cipher " + name);
        }
    }

    private static MimeBodyPart wrap(MimeMultipart mm) throws Exception {
        MimeBodyPart p = new MimeBodyPart();
        p.setContent(mm);
        p.setHeader("Content-Type", unfold(mm.getContentType()));
        return p;
    }

    private static byte[] bytes(MimeBodyPart p) throws Exception {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        p.writeTo(b);
        return b.toByteArray();
    }

    /** Sends a file as the order says; returns a JSON report (with the receipt, when sync). */
    private String send(Properties o) throws Exception {
        Path file = Paths.get(o.getProperty("file"));
        String name = o.getProperty("name", file.getFileName().toString());
        String from = o.getProperty("as2_from");
        String to = cfg.getProperty("station");
        String sign = o.getProperty("sign", "sha-256");
        String encrypt = o.getProperty("encrypt", "aes256-cbc");
        String compress = o.getProperty("compress", "none");
        String mdnMode = o.getProperty("mdn", "sync");
        boolean signedMdn = Boolean.parseBoolean(o.getProperty("signed_mdn", "true"));
        String micalgs = o.getProperty("micalg", "sha-256");
        String micalg = micalgs.split(",")[0].trim();
        String url = o.getProperty("url", cfg.getProperty("url"));

        MimeBodyPart data = new MimeBodyPart();
        String contentType = o.getProperty("content_type", "application/edi-x12");
        data.setDataHandler(new DataHandler(new ByteArrayDataSource(Files.readAllBytes(file), contentType)));
        data.setHeader("Content-Type", contentType);
        data.setHeader("Content-Transfer-Encoding", "binary");
        data.setDisposition("attachment");
        data.setFileName(name);

        boolean signing = !"none".equals(sign);
        boolean encrypting = !"none".equals(encrypt);
        boolean wantsMdn = !"none".equals(mdnMode);
        String mic = null;
        MimeBodyPart bp = data;
        // OpenAS2's AS2SenderModule.secure(): the MIC before compression for unsigned messages
        // (headers included when encrypted), right before signing otherwise.
        if (!signing && wantsMdn) {
            mic = calculateMic(bp, micalg, encrypting);
        }
        if ("before-signing".equals(compress)) {
            SMIMECompressedGenerator g = new SMIMECompressedGenerator();
            g.setContentTransferEncoding("binary");
            bp = g.generate(bp, new ZlibCompressor());
        }
        if (signing) {
            if (wantsMdn) {
                mic = calculateMic(bp, micalg, true);
            }
            SMIMESignedGenerator g = signer(javaDigest(sign), Boolean.parseBoolean(o.getProperty("pss", "false")));
            g.setContentTransferEncoding("binary");
            bp = wrap(g.generate(bp));
        }
        if ("after-signing".equals(compress)) {
            SMIMECompressedGenerator g = new SMIMECompressedGenerator();
            g.setContentTransferEncoding("binary");
            bp = g.generate(bp, new ZlibCompressor());
        }
        if (encrypting) {
            JceKeyTransRecipientInfoGenerator rig = Boolean.parseBoolean(o.getProperty("oaep", "false"))
                    ? new JceKeyTransRecipientInfoGenerator(partnerCert, new JcaAlgorithmParametersConverter()
                            .getAlgorithmIdentifier(PKCSObjectIdentifiers.id_RSAES_OAEP, OAEPParameterSpec.DEFAULT))
                    : new JceKeyTransRecipientInfoGenerator(partnerCert);
            rig.setProvider("BC");
            ASN1ObjectIdentifier oid = cipherOid(encrypt);
            if (encrypt.endsWith("gcm")) {
                CMSAuthEnvelopedDataGenerator g = new CMSAuthEnvelopedDataGenerator();
                g.addRecipientInfoGenerator(rig);
                OutputAEADEncryptor enc =
                        (OutputAEADEncryptor) new JceCMSContentEncryptorBuilder(oid).setProvider("BC").build();
                CMSAuthEnvelopedData ad = g.generate(new CMSProcessableByteArray(bytes(bp)), enc);
                InternetHeaders ih = new InternetHeaders();
                ih.addHeader("Content-Type", "application/pkcs7-mime; smime-type=authEnveloped-data; name=smime.p7m");
                ih.addHeader("Content-Transfer-Encoding", "binary");
                ih.addHeader("Content-Disposition", "attachment; filename=smime.p7m");
                bp = new MimeBodyPart(ih, ad.getEncoded());
            } else {
                SMIMEEnvelopedGenerator g = new SMIMEEnvelopedGenerator();
                g.setContentTransferEncoding("binary");
                g.addRecipientInfoGenerator(rig);
                bp = g.generate(bp, new JceCMSContentEncryptorBuilder(oid).setProvider("BC").build());
            }
        }

        // The outermost part's headers travel as HTTP headers, its body as the HTTP body.
        byte[] whole = bytes(bp);
        int split = indexOf(whole, "\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        InternetHeaders partHeaders = new InternetHeaders(new ByteArrayInputStream(whole, 0, split + 4));
        byte[] body = java.util.Arrays.copyOfRange(whole, split + 4, whole.length);
        Map<String, String> headers = new LinkedHashMap<>();
        String messageId = "<java-" + Long.toHexString(new SecureRandom().nextLong()) + "@bc.test>";
        headers.put("AS2-Version", "1.2");
        headers.put("AS2-From", quote(from));
        headers.put("AS2-To", quote(to));
        headers.put("Message-ID", messageId);
        headers.put("Subject", "AS2 message");
        headers.put("Date", new SimpleDateFormat("EEE, dd MMM yyyy HH:mm:ss Z", Locale.ENGLISH).format(new Date()));
        headers.put("MIME-Version", "1.0");
        for (Enumeration<Header> e = partHeaders.getAllHeaders(); e.hasMoreElements(); ) {
            Header hd = e.nextElement();
            if (!hd.getName().equalsIgnoreCase("Content-Transfer-Encoding")) {
                headers.put(hd.getName(), unfold(hd.getValue()));
            }
        }
        if (wantsMdn) {
            headers.put("Disposition-Notification-To", "java@bc.test");
            if (signedMdn) {
                headers.put("Disposition-Notification-Options",
                        "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, " + micalgs);
            }
            if ("async".equals(mdnMode)) {
                String scheme = "true".equals(cfg.getProperty("https")) ? "https" : "http";
                headers.put("Receipt-Delivery-Option", scheme + "://127.0.0.1:" + cfg.getProperty("port") + "/as2");
            }
        }
        Files.writeString(dir.resolve("sent").resolve(fileSafe(messageId) + ".mic"), mic == null ? "" : mic);
        Response r = post(url, headers, body);
        StringBuilder out = new StringBuilder("{\"http\":").append(r.status);
        out.append(",\"message_id\":").append(json(messageId));
        out.append(",\"mic\":").append(json(mic));
        if ("sync".equals(mdnMode) && r.status == 200) {
            Map<String, Object> m = checkMdn(r.headers, r.body, mic);
            out.append(",\"mdn\":").append(json(m));
        }
        out.append(",\"body\":").append(json(new String(r.body, 0, Math.min(r.body.length, 300), StandardCharsets.ISO_8859_1)));
        return out.append("}").toString();
    }

    static final class Response {
        int status;
        Map<String, String> headers = new LinkedHashMap<>();
        byte[] body;
    }

    private Response post(String url, Map<String, String> headers, byte[] body) throws Exception {
        HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
        if (c instanceof HttpsURLConnection) {
            ((HttpsURLConnection) c).setSSLSocketFactory(clientTls.getSocketFactory());
        }
        c.setRequestMethod("POST");
        c.setDoOutput(true);
        c.setConnectTimeout(10_000);
        c.setReadTimeout(60_000);
        c.setFixedLengthStreamingMode(body.length);
        for (Map.Entry<String, String> e : headers.entrySet()) {
            c.setRequestProperty(e.getKey(), e.getValue());
        }
        try (OutputStream os = c.getOutputStream()) {
            os.write(body);
        }
        Response r = new Response();
        r.status = c.getResponseCode();
        for (Map.Entry<String, List<String>> e : c.getHeaderFields().entrySet()) {
            if (e.getKey() != null) {
                r.headers.put(e.getKey().toLowerCase(Locale.ROOT), String.join(", ", e.getValue()));
            }
        }
        InputStream in = r.status < 400 ? c.getInputStream() : c.getErrorStream();
        r.body = in == null ? new byte[0] : in.readAllBytes();
        return r;
    }

    // ------------------------------------------------------------------ small things

    static int indexOf(byte[] data, byte[] pattern) {
        outer:
        for (int i = 0; i + pattern.length <= data.length; i++) {
            for (int j = 0; j < pattern.length; j++) {
                if (data[i + j] != pattern[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new IllegalStateException("no header block");
    }

    static String unfold(String v) {
        return v == null ? null : v.replaceAll("\r?\n[ \t]*", " ");
    }

    static String quote(String id) {
        return id.contains(" ") ? "\"" + id + "\"" : id;
    }

    static String unquote(String v) {
        if (v == null) {
            return null;
        }
        v = v.trim();
        return v.length() >= 2 && v.startsWith("\"") && v.endsWith("\"") ? v.substring(1, v.length() - 1) : v;
    }

    static String fileSafe(String messageId) {
        return messageId.replaceAll("[^A-Za-z0-9@._-]", "_");
    }

    static String describe(Throwable e) {
        StringBuilder b = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (b.length() > 0) {
                b.append(": ");
            }
            b.append(t.getClass().getSimpleName()).append(" ").append(t.getMessage());
        }
        return b.toString();
    }

    static Map<String, Object> map(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i + 1 < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    static String json(Object v) {
        if (v == null) {
            return "null";
        }
        if (v instanceof Boolean || v instanceof Number) {
            return v.toString();
        }
        if (v instanceof Map) {
            StringBuilder b = new StringBuilder("{");
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (b.length() > 1) {
                    b.append(",");
                }
                b.append(json(e.getKey().toString())).append(":").append(json(e.getValue()));
            }
            return b.append("}").toString();
        }
        String s = v.toString();
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        return b.append("\"").toString();
    }

    private synchronized void event(Map<String, Object> ev) {
        try {
            Files.write(dir.resolve("events.jsonl"), (json(ev) + "\n").getBytes(StandardCharsets.UTF_8),
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
    }
}
