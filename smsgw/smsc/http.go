package smsc

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"mime"
	"net/http"
	"time"
)

// HTTPHandler serves the simulator to people and tests:
//
//	POST /mo             form or JSON {"from","to","text"}: SendMO; 200 "sent", else 4xx/5xx with the reason
//	GET  /messages       JSON array of the kept submits (Message)
//	GET  /inbox/{phone}  JSON array of the phone's complete messages (InboxMessage)
//	GET  /               a small HTML page: recent messages and a form to send an MO
func (s *Server) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mo", s.serveMO)
	mux.HandleFunc("GET /messages", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Messages())
	})
	mux.HandleFunc("GET /inbox/{phone}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Inbox(r.PathValue("phone")))
	})
	mux.HandleFunc("GET /{$}", s.servePage)
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

type moRequest struct {
	From string `json:"from"`
	To   string `json:"to"`
	Text string `json:"text"`
}

func (s *Server) serveMO(w http.ResponseWriter, r *http.Request) {
	var req moRequest
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	fromPage := false
	if ct == "application/json" {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
			return
		}
		req = moRequest{From: r.PostForm.Get("from"), To: r.PostForm.Get("to"), Text: r.PostForm.Get("text")}
		fromPage = r.PostForm.Get("page") != ""
	}
	if req.From == "" || req.To == "" {
		http.Error(w, "from and to are required", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	err := s.SendMO(ctx, req.From, req.To, req.Text)
	var st Status
	switch {
	case err == nil:
	case errors.Is(err, ErrNoSession), errors.Is(err, ErrClosed):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	case errors.Is(err, errTooManyParts):
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	case errors.As(err, &st):
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	case errors.Is(err, errRespTimeout), errors.Is(err, context.DeadlineExceeded):
		http.Error(w, err.Error(), http.StatusGatewayTimeout)
		return
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if fromPage {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("sent\n"))
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>SMSC simulator</title>
<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}</style>
</head><body>
<h1>SMSC simulator</h1>
<p>{{.Bound}} bound session(s). Outcome <b>{{.Config.Outcome}}</b>, receipts as <b>{{.Config.ReceiptMode}}</b>, ids <b>{{.Config.IDFormat}}</b>.</p>
<h2>Send from a phone</h2>
<form method="post" action="/mo">
<input type="hidden" name="page" value="1">
<label>From <input name="from" value="+12015550123"></label>
<label>To <input name="to" value="+12015550100"></label><br>
<textarea name="text" rows="3" cols="60"></textarea><br>
<button>Send</button>
</form>
<h2>Received (newest first)</h2>
<table><tr><th>received</th><th>id</th><th>from</th><th>to</th><th>part</th><th>state</th><th>text</th></tr>
{{range .Messages}}<tr><td>{{.Received.Format "15:04:05.000"}}</td><td>{{.ID}}</td><td>{{.Source}}</td><td>{{.Dest}}</td><td>{{with .Concat}}{{.Seq}}/{{.Total}}{{end}}</td><td>{{.State}}</td><td>{{.Text}}</td></tr>
{{end}}</table>
</body></html>
`))

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	msgs := s.Messages()
	if len(msgs) > 200 {
		msgs = msgs[len(msgs)-200:]
	}
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	page.Execute(w, struct {
		Bound    int
		Config   Config
		Messages []*Message
	}{s.Bound(), s.Config(), msgs})
}
