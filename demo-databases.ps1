#Requires -Version 5.1
<#
.SYNOPSIS
    Interactive menu of the IA Poste Manager database toolkit.
.DESCRIPTION
    Shows the options of scripts/menu-options.json (the same list `npm run menu` uses), runs the
    npm script of the chosen option and reports its exit code, until [0] or Ctrl+C at the prompt;
    Ctrl+C inside an option stops that option and shows the menu again.
    Works with Windows PowerShell 5.1 and PowerShell 7 on Windows, Linux and macOS.
    This file is kept ASCII-only: Windows PowerShell 5.1 reads a .ps1 without BOM in the ANSI code
    page, so every accented label lives in the UTF-8 JSON file instead.
#>
[CmdletBinding()]
param()

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$root = $PSScriptRoot
$optionsPath = Join-Path (Join-Path $root 'scripts') 'menu-options.json'
$menu = Get-Content -LiteralPath $optionsPath -Raw -Encoding UTF8 | ConvertFrom-Json

# npm is npm.cmd on Windows. OS=Windows_NT there under 5.1 and 7 alike (5.1 has no IsWindows variable).
$onWindows = $env:OS -eq 'Windows_NT'
$npm = if ($onWindows) { 'npm.cmd' } else { 'npm' }
if (-not (Get-Command $npm -ErrorAction SilentlyContinue)) {
    Write-Host "Error: $npm not found. Install Node.js 20 or newer, then run 'npm ci' in $root." -ForegroundColor Red
    exit 1
}
if ($onWindows) { [Console]::OutputEncoding = [System.Text.Encoding]::UTF8 }

function Show-Menu {
    $line = '=' * 70
    Write-Host ''
    Write-Host $line -ForegroundColor Cyan
    Write-Host $menu.title -ForegroundColor Cyan
    Write-Host $line -ForegroundColor Cyan
    Write-Host ''
    Write-Host $menu.question -ForegroundColor Yellow
    Write-Host ''
    foreach ($option in $menu.options) {
        Write-Host ("  [{0}] {1}" -f $option.key, $option.label)
    }
    Write-Host ''
}

# Ctrl+C inside an option must stop the option, not the menu. The console sends Ctrl+C to every
# process attached to it, so the option (node) stops by itself; but PowerShell stops the whole script
# too (a finally block runs, then the stop goes on). While an option runs, this handler, registered
# after PowerShell's own, marks the event as handled, so PowerShell leaves the menu running.
# (Windows console. On Linux and macOS, `npm run menu` is the menu to use.)
if (-not ('IpmMenuCtrlC' -as [type])) {
    Add-Type -TypeDefinition @'
using System;
public static class IpmMenuCtrlC {
    private static bool pressed;
    private static readonly ConsoleCancelEventHandler Keep = delegate (object sender, ConsoleCancelEventArgs e) { pressed = true; e.Cancel = true; };
    public static void Ignore() { pressed = false; Console.CancelKeyPress += Keep; }
    public static bool Restore() { Console.CancelKeyPress -= Keep; return pressed; }
}
'@
}

function Invoke-MenuOption($option) {
    $script = $option.npmScript
    Write-Host ("> npm run {0}" -f $script) -ForegroundColor DarkGray
    Push-Location $root
    $code = 1
    $interrupted = $false
    [IpmMenuCtrlC]::Ignore()
    try {
        & $npm run --silent $script
        $code = $LASTEXITCODE
    }
    finally {
        $interrupted = [IpmMenuCtrlC]::Restore()
        Pop-Location
    }
    if ($interrupted) {
        Write-Host ("INTERROMPU : [{0}] npm run {1} arrete par Ctrl+C, retour au menu (code {2})" -f $option.key, $script, $code) -ForegroundColor Yellow
    }
    elseif ($code -eq 0) {
        Write-Host ("OK: [{0}] npm run {1} (code 0)" -f $option.key, $script) -ForegroundColor Green
    }
    else {
        Write-Host ("ECHEC: [{0}] npm run {1} : code {2}" -f $option.key, $script, $code) -ForegroundColor Red
    }
}

$keys = ($menu.options | ForEach-Object { $_.key }) -join ', '
try {
    while ($true) {
        Show-Menu
        $choice = (Read-Host $menu.prompt)
        if ($null -eq $choice) { break }
        $choice = $choice.Trim()
        $option = $menu.options | Where-Object { $_.key -eq $choice } | Select-Object -First 1
        if ($null -eq $option) {
            Write-Host ("Choix invalide : '{0}'. Tapez un numero parmi : {1}." -f $choice, $keys) -ForegroundColor Red
            continue
        }
        if (-not ($option.PSObject.Properties.Name -contains 'npmScript')) { break }
        Invoke-MenuOption $option
    }
}
finally {
    # Runs on [0], on end of input and on Ctrl+C alike, so the terminal is left clean.
    Write-Host 'Au revoir.'
}
