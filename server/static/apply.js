// A campaign's shared link: /apply#TOKEN. The token stays in the fragment and goes only in the POST body.
// On success the server has made this visitor a candidate with a web interview; the page moves on to its
// /join page, which runs the interview as for an invited candidate.
"use strict";

const token = location.hash.slice(1);

function showError(message) {
  const box = document.getElementById("apply-error");
  box.textContent = message;
  box.hidden = false;
}

function refuse(message) {
  document.getElementById("form-section").hidden = true;
  document.getElementById("refused-message").textContent = message;
  document.getElementById("refused").hidden = false;
}

async function submit(event) {
  event.preventDefault();
  const button = document.getElementById("apply");
  const name = document.getElementById("name").value.trim();
  const phone = document.getElementById("phone").value.trim();
  if (!name || !phone) {
    showError("Please enter your name and your phone number.");
    return;
  }
  button.disabled = true;
  try {
    const response = await fetch("/apply", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({token, name, phone}),
    });
    const body = await response.json().catch(() => ({}));
    if (response.status === 201 && body.joinToken) {
      location.assign("/join#" + body.joinToken);
      return;
    }
    const message = (body.error && body.error.message) || "Something went wrong. Please try again.";
    if (response.status === 404) refuse(message); else showError(message);
  } catch (error) {
    showError("The server could not be reached. Check your connection and try again.");
  }
  button.disabled = false;
}

if (!token) {
  refuse("This link is not valid. Check that you opened the whole link.");
} else {
  document.getElementById("apply-form").addEventListener("submit", submit);
}
